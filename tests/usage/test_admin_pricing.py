"""The pricing admin: plans with charges, subscriptions on the account page, change plan."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import AccountFactory
from tests.support.pricing import api_calls, metered, scale_plan
from usage.models import Charge, Plan, Subscription
from usage.subscriptions import subscription_create

pytestmark = pytest.mark.django_db
SUBSCRIPTIONS = reverse("admin:usage_subscription_changelist")


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="fin-password-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    client.force_login(user)
    return client


def _charge_formset(**charge) -> dict:
    data = {
        "charges-TOTAL_FORMS": "1",
        "charges-INITIAL_FORMS": "0",
        "charges-MIN_NUM_FORMS": "0",
        "charges-MAX_NUM_FORMS": "1000",
        "charges-0-metric": str(api_calls().pk),
        "charges-0-model": "graduated",
        "charges-0-unit_amount": "0",
        "charges-0-free_units": "0",
        "charges-0-package_size": "",
        "charges-0-tiers": '[{"up_to": 1000, "unit_amount": "0"}, {"up_to": null, '
        '"unit_amount": "0.01"}]',
    }
    data.update({f"charges-0-{name}": value for name, value in charge.items()})
    return data


def _plan_form(**charge) -> dict:
    return {
        "code": "scale",
        "name": "Scale",
        "currency": "USD",
        "amount": "100.00",
        "setup_fee": "0",
        "trial_days": "0",
        **_charge_formset(**charge),
    }


def test_finance_adds_a_plan_with_a_tiered_charge(finance):
    response = finance.post(reverse("admin:usage_plan_add"), _plan_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    charge = Charge.objects.get(plan__code="scale")
    assert charge.tiers == [
        {"up_to": "1000", "unit_amount": "0", "flat_amount": "0"},
        {"up_to": None, "unit_amount": "0.01", "flat_amount": "0"},
    ]


def test_a_bad_tier_list_is_an_error_on_the_form(finance):
    response = finance.post(
        reverse("admin:usage_plan_add"),
        _plan_form(tiers='[{"up_to": 1000, "unit_amount": "0"}]'),
    )
    assert response.status_code == 200
    assert "the last tier must be open" in response.content.decode()
    assert not Plan.objects.exists()


def test_a_plan_with_subscriptions_is_read_only(finance):
    plan = scale_plan()
    subscription_create(account=AccountFactory(), plan=plan, start_date=dt.date(2026, 11, 1))
    page = finance.get(reverse("admin:usage_plan_change", args=[plan.pk]))
    assert page.status_code == 200
    assert 'name="amount"' not in page.content.decode()
    finance.post(reverse("admin:usage_plan_change", args=[plan.pk]), _plan_form(amount="1"))
    plan.refresh_from_db()
    assert plan.amount == Decimal("100.00")


def test_the_account_page_lists_its_subscriptions(finance):
    account = AccountFactory()
    subscription_create(account=account, plan=scale_plan(), start_date=dt.date(2026, 11, 1))
    page = finance.get(reverse("admin:accounts_account_change", args=[account.pk]))
    assert page.status_code == 200
    assert "Scale (scale)" in page.content.decode()


def test_change_plan_shows_the_proration_then_applies(finance):
    # given a subscription from 1 Nov with 12,000 calls
    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=scale_plan(), start_date=dt.date(2026, 11, 1)
    )
    big = scale_plan("big", name="Big", amount=Decimal("300.00"))
    metered(account, dt.date(2026, 11, 5), 12000)
    form = {
        "action": "change_plan",
        "_selected_action": [str(subscription.pk)],
        "plan": str(big.pk),
        "date": "2026-11-16",
    }
    # when previewed
    preview = finance.post(SUBSCRIPTIONS, {**form, "preview": "1"})
    # then the month is shown before and after, and nothing changed yet
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Scale plan, 1-30 Nov 2026" in html
    assert "Scale plan, 1-15 Nov 2026" in html
    assert "Big plan, 16-30 Nov 2026" in html
    assert "200.00 USD" in html  # 100.00 fee + 100.00 usage
    assert "300.00 USD" in html  # 50.00 + 150.00 of fees, 100.00 of usage on the old plan
    assert Subscription.objects.count() == 1
    # when applied
    applied = finance.post(SUBSCRIPTIONS, {**form, "apply": "1"})
    assert applied.status_code == 302
    subscription.refresh_from_db()
    assert subscription.end_date == dt.date(2026, 11, 15)
    assert Subscription.objects.get(plan=big).start_date == dt.date(2026, 11, 16)


def test_the_account_form_saves_with_its_subscriptions_shown(finance):
    from tests.accounts.test_admin import account_form

    account = AccountFactory()
    subscription = subscription_create(
        account=account, plan=scale_plan(), start_date=dt.date(2026, 11, 1)
    )
    url = reverse("admin:accounts_account_change", args=[account.pk])
    response = finance.post(url, account_form(org_name="Renamed"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.org_name == "Renamed"
    assert Subscription.objects.get() == subscription
