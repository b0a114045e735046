"""Delivery in the admin: the outbox (each message, its state and error, "Resend"),
webhook endpoints (disabled ones flagged, re-enable, test) and every webhook attempt
("Replay"); the invoice page lists its messages (`NotificationInline`) and can revoke
its hosted-page links; the credit notes (read-only) show their hosted link and can
revoke it. Registered from invoices.admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html

from billing.lib.admin import ReadOnlyAdmin, ReadOnlyAdminMixin
from billing.lib.money import quantize
from invoices.delivery import endpoints, outbox
from invoices.delivery.hosted import hosted_link_revoke, hosted_url
from invoices.models import CreditNote, Invoice, Notification, WebhookAttempt, WebhookEndpoint


class _ResendPermission:
    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("invoices.change_notification")


@admin.action(description="Resend (same message id)", permissions=["resend"])
def resend_notifications(model_admin, request, queryset: QuerySet[Notification]) -> None:
    requeued = sum(outbox.notification_resend(n) for n in queryset[:1000])
    skipped = queryset.count() - requeued
    model_admin.message_user(
        request,
        f"Queued {requeued} again."
        + (f" {skipped} still queued or being sent, left alone." if skipped else ""),
        messages.SUCCESS if not skipped else messages.WARNING,
    )


@admin.register(Notification)
class NotificationAdmin(_ResendPermission, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "channel",
        "topic",
        "invoice",
        "recipient",
        "state",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "last_error_excerpt",
    )
    list_filter = ("state", "channel", "topic")
    list_select_related = ("invoice",)
    search_fields = ("recipient", "invoice__friendly_id")
    raw_id_fields = ("invoice", "endpoint")
    actions = (resend_notifications,)

    @admin.display(description="last error")
    def last_error_excerpt(self, notification: Notification) -> str:
        return notification.last_error[:120]


class NotificationInline(_ResendPermission, ReadOnlyAdminMixin, admin.TabularInline):
    """The invoice's sent and pending messages, in its timeline."""

    model = Notification
    fields = (
        "created_at",
        "channel",
        "topic",
        "recipient",
        "state",
        "attempts",
        "sent_at",
        "last_error",
        "message_link",
    )
    readonly_fields = fields
    extra = 0
    ordering = ("created_at", "id")
    verbose_name_plural = "messages (e-mails and webhooks)"

    def has_view_permission(self, request, obj=None) -> bool:
        # Shown, never submitted: leaving it out of POSTs keeps the invoice form's
        # submissions free of a formset (and its management form) that edits nothing.
        if request.method == "POST":
            return False
        return super().has_view_permission(request, obj)

    @admin.display(description="")
    def message_link(self, notification: Notification) -> str:
        url = reverse("admin:invoices_notification_changelist") + f"?id={notification.pk}"
        return format_html('<a href="{}">resend…</a>', url)


@admin.action(description="Revoke the hosted-page links", permissions=["change"])
def revoke_hosted_links(model_admin, request, queryset: QuerySet[Invoice]) -> None:
    for invoice in queryset[:1000]:
        hosted_link_revoke(invoice)
    model_admin.message_user(request, f"Revoked the links of {min(queryset.count(), 1000)}.")


@admin.action(description="Revoke the hosted-page links", permissions=["revoke"])
def revoke_credit_note_links(model_admin, request, queryset: QuerySet[CreditNote]) -> None:
    notes = list(queryset[:1000])
    for note in notes:
        hosted_link_revoke(note)
    model_admin.message_user(request, f"Revoked the links of {len(notes)}.")


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Credit notes are issued from their invoice (its "Create credit note" action);
    here staff find one, open its hosted page and revoke its link."""

    list_display = ("number", "invoice", "account", "issued_on", "total", "reason")
    list_select_related = ("invoice", "account")
    search_fields = ("number",)
    search_help_text = "A credit note number (or its start)."
    fields = (
        "number",
        "invoice",
        "account",
        "issued_on",
        "reason",
        "total",
        "amount_due_reduced",
        "amount_refunded",
        "amount_to_balance",
        "actor",
        "hosted_page",
    )
    readonly_fields = fields
    actions = (revoke_credit_note_links,)

    def has_revoke_permission(self, request) -> bool:
        # Whoever may revoke an invoice's links may revoke its credit notes'.
        return request.user.has_perm("invoices.change_invoice")

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(number__startswith=term.upper()), False

    @admin.display(description="total")
    def total(self, note: CreditNote) -> str:
        return f"{quantize(note.cost, note.currency)} {note.currency}"

    @admin.display(description="hosted page")
    def hosted_page(self, note: CreditNote) -> str:
        url = hosted_url(note)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)


@admin.action(description="Re-enable", permissions=["change"])
def enable_endpoints(model_admin, request, queryset: QuerySet[WebhookEndpoint]) -> None:
    for endpoint in queryset:
        endpoints.webhook_endpoint_update(endpoint, enabled=True)
    model_admin.message_user(request, f"Enabled {queryset.count()}.")


@admin.action(description="Send a test event", permissions=["change"])
def test_endpoints(model_admin, request, queryset: QuerySet[WebhookEndpoint]) -> None:
    for endpoint in queryset:
        endpoints.webhook_endpoint_test(endpoint)
    model_admin.message_user(request, f"Queued a test event to {queryset.count()}.")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Created through /v1 (the secret is shown once there); staff see the state,
    re-enable an endpoint disabled after failing, and follow its deliveries."""

    list_display = ("url", "description", "events", "enabled", "disabled_reason", "deliveries")
    list_filter = ("enabled",)
    fields = ("url", "description", "events", "enabled", "disabled_reason", "disabled_at")
    readonly_fields = ("url", "events", "enabled", "disabled_reason", "disabled_at")
    actions = (enable_endpoints, test_endpoints)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="attempts")
    def deliveries(self, endpoint: WebhookEndpoint) -> str:
        url = (
            reverse("admin:invoices_webhookattempt_changelist")
            + f"?endpoint__id__exact={endpoint.pk}"
        )
        return format_html('<a href="{}">log</a>', url)


@admin.action(description="Replay the message", permissions=["resend"])
def replay_attempts(model_admin, request, queryset: QuerySet[WebhookAttempt]) -> None:
    notifications = Notification.objects.filter(pk__in=queryset.values("notification_id"))
    resend_notifications(model_admin, request, notifications)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(_ResendPermission, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "notification",
        "success",
        "response_status",
        "response_excerpt",
        "error",
        "duration_ms",
    )
    list_filter = ("success", "endpoint")
    list_select_related = ("endpoint", "notification")
    raw_id_fields = ("endpoint", "notification")
    actions = (replay_attempts,)
