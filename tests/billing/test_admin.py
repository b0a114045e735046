"""service_action: one service call per selected row, refusals reported by row."""

from __future__ import annotations

import pytest
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.template.response import TemplateResponse
from django.test import RequestFactory

from billing.lib.admin import service_action, staff_actor


class Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RecordingAdmin(admin.ModelAdmin):
    """The admin of the User table, keeping its messages instead of showing them."""

    def __init__(self) -> None:
        super().__init__(User, admin.site)
        self.sent: list[tuple[int, str]] = []

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        self.sent.append((level, message))


@pytest.fixture
def users(db):
    return [User.objects.create(username=f"u{n:02d}") for n in range(12)]


def selected():
    return User.objects.filter(username__startswith="u")


@pytest.fixture
def request_as(rf: RequestFactory):
    def build(data=None):
        request = rf.post("/", data or {"action": "touch"})
        request.user, _ = User.objects.get_or_create(
            username="fin", defaults={"is_staff": True, "is_superuser": True}
        )
        return request

    return build


def test_every_row_goes_through_the_service_with_the_actor(users, request_as):
    calls = []
    action = service_action(
        lambda *, user, actor: calls.append((user.username, actor)),
        subject="user",
        description="Touch",
        done="Touched",
        errors=(Refused,),
        with_actor=True,
        note="Nothing else changed.",
    )
    model_admin = RecordingAdmin()
    assert action(model_admin, request_as(), selected()) is None
    assert [name for name, _ in calls] == [user.username for user in users]
    assert {actor for _, actor in calls} == {"staff:fin"}
    # the rows acted on are named (capped), and each is in Recent actions
    assert model_admin.sent == [
        (
            messages.SUCCESS,
            "Touched 12: u00; u01; u02; u03; u04; u05; u06; u07; u08; u09; and 2 more. "
            "Nothing else changed.",
        )
    ]
    assert LogEntry.objects.filter(change_message="Touch").count() == 12
    # admin.action sets these attributes; the stubs type the action as a plain callable.
    assert action.allowed_permissions == ["change"]  # type: ignore[attr-defined]
    assert action.short_description == "Touch"  # type: ignore[attr-defined]


def test_refusals_are_listed_by_row_and_capped(users, request_as):
    def refuse_all_but_first(*, user):
        if user.username != "u00":
            raise Refused("not today")

    action = service_action(
        refuse_all_but_first, subject="user", description="T", done="Done", errors=(Refused,)
    )
    model_admin = RecordingAdmin()
    action(model_admin, request_as(), selected())
    [(level, text)] = model_admin.sent
    assert level == messages.WARNING
    assert text.startswith("Done 1 (u00); 11 failed: u01: not today; u02: not today")
    assert text.endswith("; and 1 more")


def test_an_exception_not_declared_is_not_swallowed(users, request_as):
    def broken(*, user):
        raise RuntimeError("bug")

    action = service_action(broken, subject="user", description="T", done="D", errors=(Refused,))
    with pytest.raises(RuntimeError):
        action(RecordingAdmin(), request_as(), selected())


def test_too_many_rows_are_refused_before_any_call(users, request_as):
    calls = []
    action = service_action(
        lambda *, user: calls.append(user),
        subject="user",
        description="T",
        done="D",
        errors=(),
        max_objects=5,
    )
    model_admin = RecordingAdmin()
    action(model_admin, request_as(), selected())
    assert calls == []
    [(level, text)] = model_admin.sent
    assert level == messages.ERROR and "Select at most 5 users" in text and "(12 selected)" in text


class NoteForm(forms.Form):
    note = forms.CharField()


def test_a_form_asks_first_then_passes_its_fields_as_keywords(users, request_as):
    calls = []
    action = service_action(
        lambda *, user, note: calls.append((user.username, note)),
        subject="user",
        description="Annotate",
        done="Annotated",
        errors=(),
        form=NoteForm,
        applies=lambda user: user.username != "u01",
    )
    model_admin = RecordingAdmin()
    two = selected().filter(username__in=["u00", "u01"])
    page = action(model_admin, request_as({"action": "annotate"}), two)
    assert isinstance(page, TemplateResponse)
    assert page.status_code == 200 and calls == []
    assert page.context_data["action"] == "annotate"
    assert [row["refused"] for row in page.context_data["rows"]] == [False, True]
    invalid = action(model_admin, request_as({"action": "annotate", "apply": "1"}), two)
    assert isinstance(invalid, TemplateResponse)
    assert invalid.context_data["form"].errors and calls == []
    action(model_admin, request_as({"action": "annotate", "apply": "1", "note": "hi"}), two)
    assert calls == [("u00", "hi"), ("u01", "hi")]
    assert model_admin.sent == [(messages.SUCCESS, "Annotated 2: u00; u01.")]
    # the form's answers are part of what Recent actions says was done
    assert set(LogEntry.objects.values_list("change_message", flat=True)) == {"Annotate (note: hi)"}


def test_one_row_is_reported_in_the_callers_words(users, request_as):
    action = service_action(
        lambda *, user: user,
        subject="user",
        description="Greet",
        done="Greeted",
        errors=(),
        done_one=lambda user: f"Greeted {user.username} by name",
    )
    model_admin = RecordingAdmin()
    action(model_admin, request_as(), selected().filter(username="u03"))
    assert model_admin.sent == [(messages.SUCCESS, "Greeted u03 by name.")]


def test_a_refusal_is_reworded_by_the_caller(users, request_as):
    def refuse(*, user):
        raise Refused("Cannot transition to x")

    action = service_action(
        refuse,
        subject="user",
        description="T",
        done="Done",
        errors=(Refused,),
        refusal=lambda user, exc: f"{user.username} is not ready",
    )
    model_admin = RecordingAdmin()
    action(model_admin, request_as(), selected().filter(username="u05"))
    assert model_admin.sent == [(messages.ERROR, "Done 0; 1 failed: u05: u05 is not ready")]


def test_staff_actor():
    request = RequestFactory().get("/")
    request.user = User(username="ana")
    assert staff_actor(request) == "staff:ana"
