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
    done_one: Callable[[Any], str] | None = None,
    refusal: Callable[[Any, Exception], str] | None = None,
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
    - `done` is the past-tense verb of the report ("Issued 3: …"), `note` a sentence
      added to a fully successful report. `done_one(row)` words the report when one
      row was acted on ("Issued invoice 2026-11-00000012 to Acme"); it is given the
      row as the service returned it (with its new number, say).
    - `refusal(row, exc)` words a refused row for a clerk; by default the service's
      own message.
    - Each row acted on is recorded in the admin's "Recent actions" (LogEntry).
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
        succeeded: list[Any] = []
        failures: list[str] = []
        for obj in rows:
            try:
                result = service(**{subject: obj}, **cleaned)
            except errors as exc:
                reason = refusal(obj, exc) if refusal is not None else _error_message(exc)
                failures.append(f"{obj}: {reason}")
            else:
                acted = result if isinstance(result, type(obj)) else obj
                succeeded.append(acted)
                model_admin.log_change(request, acted, _log_message(description, cleaned))
        if len(succeeded) == 1 and not failures and done_one is not None:
            text = done_one(succeeded[0]) + "." + (f" {note}" if note else "")
            model_admin.message_user(request, text, messages.SUCCESS)
        else:
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


def _log_message(description: str, cleaned: dict[str, Any]) -> str:
    """What Recent actions and the object's history say was done."""
    details = ", ".join(
        f"{key}: {value}" for key, value in cleaned.items() if key != "actor" and value
    )
    return description + (f" ({details})" if details else "")


def _listed(items: Sequence[Any]) -> str:
    shown = "; ".join(str(item) for item in items[:MAX_FAILURES_LISTED])
    if len(items) > MAX_FAILURES_LISTED:
        shown += f"; and {len(items) - MAX_FAILURES_LISTED} more"
    return shown


def _report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    done: str,
    succeeded: Sequence[Any],
    failures: list[str],
    note: str,
) -> None:
    """ "Issued 2: 2026-11-00000012; 2026-11-00000013." or, with refusals,
    "Issued 1 (2026-11-00000012); 1 failed: 2026-11-00000009: …"."""
    if not failures:
        text = f"{done} {len(succeeded)}" + (f": {_listed(succeeded)}." if succeeded else ".")
        model_admin.message_user(request, text + (f" {note}" if note else ""), messages.SUCCESS)
        return
    done_part = f"{done} {len(succeeded)}" + (f" ({_listed(succeeded)})" if succeeded else "")
    level = messages.WARNING if succeeded else messages.ERROR
    model_admin.message_user(
        request, f"{done_part}; {len(failures)} failed: {_listed(failures)}", level
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
