"""The OpenAPI security schemes of the 3scale views: those of the shared
3scale key authentication, of which ours is a subclass."""

from __future__ import annotations

from billing.lib.openapi import ThreeScaleKeyScheme


class ThreeScaleRequestKeyScheme(ThreeScaleKeyScheme):
    target_class = "invoices.api.threescale.base.ThreeScaleRequestAuthentication"
