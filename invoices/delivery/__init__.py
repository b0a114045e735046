"""Delivery: what leaves the system about an invoice (e-mails, webhooks, the hosted page).

- `models.py`: the outbox (`Notification`), webhook endpoints and their delivery attempts,
  the hosted-page link versions
- `outbox.py`: recording notifications inside the changing transaction, claiming and
  sending them exactly once after commit, retries with backoff, the sweep
- `email.py`: the e-mails (templates under `templates/emails/`), reminders
- `webhooks.py`: Standard Webhooks signing, the SSRF guard, the HTTP POST
- `hosted.py`: the signed `/i/<token>` page and its "Pay" form
- `api.py`, `urls.py`: `/v1/webhook_endpoints`
- `tasks.py`: the Celery tasks (send one, sweep, reminders)
"""
