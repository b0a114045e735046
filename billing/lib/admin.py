"""Building blocks shared by every app's admin: one way to turn a service into a
bulk action, one read-only base for tables only services write, one actor name.

The admin never restates a service's rule: an action calls the service once per
selected row and reports what the service refused, in the service's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.lib.paging import EstimatedCountPaginator

# One request should not act on thousands of rows; the management commands are
# for bulk work.
MAX_ACTION_OBJECTS = 1000
MAX_FAILURES_LISTED = 10
ACTION_FORM_TEMPLATE = "admin/service_action.html"

AdminAction = Callable[[admin.ModelAdmin, HttpRequest, QuerySet], HttpResponse | None]


def staff_actor(request: HttpRequest) -> str:
    """Who did it, as the services record it in an object's timeline."""
    return f"staff:{request.user.get_username()}"


def _error_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


def service_action(
    service: Callable[..., Any],
    *,
    subject: str,
    description: str,
    done: str,
    errors: tuple[type[Exception], ...],
    with_actor: bool = False,
    form: type[forms.Form] | None = None,
    title: str = "",
    button: str = "",
    applies: Callable[[Any], bool] | None = None,
    describe: Callable[[Any], str] = str,
    note: str = "",
    select_related: Sequence[str] = (),
    max_objects: int = MAX_ACTION_OBJECTS,
) -> AdminAction:
    """An admin action that calls `service(<subject>=obj, ...)` once per selected row.

    - `subject` is the keyword the service takes the row under (`invoice`, `account`).
    - `with_actor` passes `actor="staff:<username>"`, for services that keep a timeline.
    - `form`: the action first shows a page asking for the form's fields; their cleaned
      values are passed to the service as keywords, so each field is named after the
      service's parameter. `title` and `button` label that page.
    - `errors`: the exceptions by which the service refuses one row. Each row runs in
      the service's own transaction; a refused row is reported as `<row>: <message>`
      and the others go ahead: "Issued 3; 1 failed: 2026-11-00000004: …".
    - `applies(obj)`: shown on the confirmation page next to each row the service is
      going to refuse (e.g. the model's transition map); the service still decides.
    - `done` is the past-tense verb of the report ("Issued 3."), `note` a sentence
      added to a fully successful report.
    """
    form_class = form

    def action(
        model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet
    ) -> HttpResponse | None:
        cleaned: dict[str, Any] = {}
        if form_class is not None:
            bound = form_class(request.POST) if "apply" in request.POST else form_class()
            if not bound.is_bound or not bound.is_valid():
                return _confirmation_page(model_admin, request, queryset, bound)
            cleaned = bound.cleaned_data
        count = queryset.count()
        if count > max_objects:
            plural = model_admin.model._meta.verbose_name_plural
            model_admin.message_user(
                request,
                f"Select at most {max_objects:,} {plural} for this action ({count:,} "
                "selected); the management commands handle bulk work.",
                messages.ERROR,
            )
            return None
        if with_actor:
            cleaned = {**cleaned, "actor": staff_actor(request)}
        rows = queryset.select_related(*select_related).order_by("pk")
        succeeded, failures = 0, []
        for obj in rows:
            try:
                service(**{subject: obj}, **cleaned)
            except errors as exc:
                failures.append(f"{obj}: {_error_message(exc)}")
            else:
                succeeded += 1
        _report(model_admin, request, done, succeeded, failures, note)
        return None

    def _confirmation_page(model_admin, request, queryset, bound) -> TemplateResponse:
        rows = queryset.select_related(*select_related).order_by("pk")[:max_objects]
        opts = model_admin.model._meta
        context = {
            **model_admin.admin_site.each_context(request),
            "title": title or description,
            "opts": opts,
            "form": bound,
            "rows": [
                {
                    "pk": obj.pk,
                    "label": describe(obj),
                    "refused": applies is not None and not applies(obj),
                }
                for obj in rows
            ],
            # The name this action is registered under, posted back with the answer.
            "action": request.POST.get("action", ""),
            "button": button or description,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, ACTION_FORM_TEMPLATE, context)

    return admin.action(description=description, permissions=["change"])(action)


def _report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    done: str,
    succeeded: int,
    failures: list[str],
    note: str,
) -> None:
    if not failures:
        text = f"{done} {succeeded}." + (f" {note}" if note else "")
        model_admin.message_user(request, text, messages.SUCCESS)
        return
    listed = "; ".join(failures[:MAX_FAILURES_LISTED])
    if len(failures) > MAX_FAILURES_LISTED:
        listed += f"; and {len(failures) - MAX_FAILURES_LISTED} more"
    level = messages.WARNING if succeeded else messages.ERROR
    model_admin.message_user(
        request, f"{done} {succeeded}; {len(failures)} failed: {listed}", level
    )


class ReadOnlyAdminMixin:
    """Rows written only by the services: browsable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A big append-only table: read-only, and no exact counts or facets on its lists."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
