"""Signals the accounts app sends."""

from django.dispatch import Signal

# Sent (no arguments) when API keys changed in bulk, without a model save: a
# revocation, an account's deletion. The API's verified-key cache listens.
api_keys_changed = Signal()
