"""The batch jobs: finalize ended months, issue after the review window, charge with retries."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command

from invoices import jobs
from invoices.models import Invoice, PaymentTransaction
from tests.factories import AccountFactory, make_invoice

S = Invoice.State
ISSUED_AT = dt.datetime(2026, 10, 3, 9, tzinfo=dt.UTC)


def at(day: dt.date, hour: int = 6) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


@pytest.mark.django_db
class TestFinalizeAndIssue:
    def test_finalize_only_ended_months(self):
        old = make_invoice(period=dt.date(2026, 9, 1), now=ISSUED_AT)
        current = make_invoice(period=dt.date(2026, 10, 1), now=ISSUED_AT)
        with time_machine.travel(dt.datetime(2026, 10, 1, 2, tzinfo=dt.UTC), tick=False):
            assert jobs.invoices_finalize(dry_run=True).candidates == 1
            result = jobs.invoices_finalize()
        assert (result.candidates, result.done) == (1, 1)
        old.refresh_from_db()
        current.refresh_from_db()
        assert old.state == S.FINALIZED and old.friendly_id
        assert current.state == S.OPEN
        assert old.events.get(kind="transition").actor == jobs.ACTOR_FINALIZE

    def test_issue_two_days_after_finalizing(self):
        invoice = make_invoice(period=dt.date(2026, 9, 1), state=S.FINALIZED, now=ISSUED_AT)
        with time_machine.travel(ISSUED_AT + dt.timedelta(days=1), tick=False):
            assert jobs.invoices_issue().candidates == 0
        with time_machine.travel(ISSUED_AT + dt.timedelta(days=2), tick=False):
            result = jobs.invoices_issue()
        assert result.done == 1
        invoice.refresh_from_db()
        assert invoice.state == S.PENDING
        assert invoice.issued_on == dt.date(2026, 10, 5)


@pytest.mark.django_db
class TestCharge:
    def _issued(self, token: str) -> Invoice:
        account = AccountFactory(card_token=token, payment_terms_days=30)
        return make_invoice(
            account=account, period=dt.date(2026, 9, 1), state=S.PENDING, now=ISSUED_AT
        )

    def test_retry_schedule_three_days_apart_then_failed(self):
        invoice = self._issued("tok_chargeDeclined")
        due = invoice.due_on
        assert due == dt.date(2026, 11, 2)

        def charge_on(day: dt.date, hour: int = 6) -> jobs.JobResult:
            with time_machine.travel(at(day, hour), tick=False):
                return jobs.invoices_charge()

        assert charge_on(due - dt.timedelta(days=1)).candidates == 0  # not due yet
        first = charge_on(due)
        assert (first.candidates, first.failed) == (1, 1)
        invoice.refresh_from_db()
        assert (invoice.state, invoice.charge_attempts) == (S.UNPAID, 1)
        assert charge_on(due + dt.timedelta(days=2), 23).candidates == 0  # too early to retry
        charge_on(due + dt.timedelta(days=3))
        invoice.refresh_from_db()
        assert (invoice.state, invoice.charge_attempts) == (S.UNPAID, 2)
        charge_on(due + dt.timedelta(days=6))
        invoice.refresh_from_db()
        assert (invoice.state, invoice.charge_attempts) == (S.FAILED, 3)
        assert charge_on(due + dt.timedelta(days=9)).candidates == 0  # failed: no more tries
        attempts = PaymentTransaction.objects.filter(invoice=invoice)
        assert attempts.count() == 3 and not attempts.filter(success=True).exists()

    def test_successful_charge_and_a_second_run_at_once_does_nothing(self):
        invoice = self._issued("tok_visa")
        with time_machine.travel(at(invoice.due_on), tick=False):
            first = jobs.invoices_charge()
            second = jobs.invoices_charge()
        assert first.done == 1 and second.candidates == 0
        invoice.refresh_from_db()
        assert invoice.state == S.PAID
        assert PaymentTransaction.objects.filter(invoice=invoice, success=True).count() == 1

    def test_claim_skips_an_invoice_that_stopped_qualifying(self, monkeypatch):
        invoice = self._issued("tok_visa")
        real = jobs._run

        def paid_meanwhile(candidates, act, **kwargs):
            # Another runner charges it between the selection and the claim.
            Invoice.objects.filter(pk=invoice.pk).update(state=S.PAID, paid_at=at(invoice.due_on))
            return real(candidates, act, **kwargs)

        ids = []
        monkeypatch.setattr(
            jobs, "_run",
            lambda candidates, act, **kw: (ids.extend(candidates.values_list("pk", flat=True)),  # type: ignore[func-returns-value]
                                           paid_meanwhile(candidates, act, **kw))[1],
        )  # fmt: skip
        with time_machine.travel(at(invoice.due_on), tick=False):
            result = jobs.invoices_charge()
        assert ids == [invoice.pk]
        assert result.done == 0
        assert not PaymentTransaction.objects.filter(invoice=invoice).exists()

    def test_commands_dry_run_and_counts(self):
        invoice = self._issued("tok_chargeDeclined")
        with time_machine.travel(at(invoice.due_on), tick=False):
            out = io.StringIO()
            call_command(
                "charge_invoices", "--dry-run", "--no-progress", stdout=out, stderr=io.StringIO()
            )
            assert "[dry run] 1 invoices would be charged" in out.getvalue()
            out = io.StringIO()
            call_command("charge_invoices", "--no-progress", stdout=out, stderr=io.StringIO())
            assert "1 candidates: 0 charged, 1 failed" in out.getvalue()
            for name in ("finalize_invoices", "issue_invoices"):
                out = io.StringIO()
                call_command(name, "--no-progress", stdout=out, stderr=io.StringIO())
                assert "candidates" in out.getvalue()


def test_beat_schedule_names_registered_tasks():
    from django.conf import settings

    import invoices.tasks  # noqa: F401
    import usage.tasks  # noqa: F401
    from billing.celery import app

    schedule = settings.CELERY_BEAT_SCHEDULE
    for name in ("bill-last-month", "finalize-last-month", "issue-finalized", "charge-due"):
        assert schedule[name]["task"] in app.tasks
