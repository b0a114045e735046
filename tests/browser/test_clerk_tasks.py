"""A finance clerk's day in Debian's Chromium, end to end through the invoice pages:
find last month's outstanding invoices, issue one from its page, record a partial bank
transfer and then the rest, cancel one with a reason, download a PDF. Every page must fit a 1,280 px
window; a screenshot of each is kept (test-artifacts/browser/, git-ignored).
"""

from __future__ import annotations

import shutil
from decimal import Decimal

import pytest
from django.utils import timezone
from pypdf import PdfReader

from accounts.services import api_key_create
from billing.lib.months import format_month, month_start, previous_month
from invoices import services
from invoices.models import Invoice, PaymentTransaction
from tests.factories import AccountFactory, make_invoice
from tests.support.browser import ARTIFACTS, CHROMIUM, clipped, fits, sign_in

S = Invoice.State

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium package"),
]


@pytest.fixture
def books(settings, tmp_path):
    """Last month's invoices of three buyers in two currencies, in every state that matters."""
    settings.MEDIA_ROOT = tmp_path
    last_month = previous_month(month_start(timezone.now().date()))
    acme = AccountFactory(
        org_name="Acme Rockets",
        currency="EUR",
        country="Germany",
        vat_code="DE811907980",
        card_brand="Visa",
        card_last4="4242",
        card_exp_month=12,
        card_exp_year=2030,
    )
    globex = AccountFactory(org_name="Globex Corporation International Holdings", currency="USD")
    initech = AccountFactory(org_name="Initech", currency="USD")
    lines = [("801", "0.0416"), ("1", "49.00"), ("12.5", "3.20")]
    long_line = [("3", "12.50")]
    outstanding = [
        make_invoice(account=acme, period=last_month, lines=lines, state=S.PENDING),
        make_invoice(account=globex, period=last_month, lines=long_line, state=S.PENDING),
        make_invoice(account=initech, period=last_month, lines=long_line, state=S.UNPAID),
    ]
    draft = make_invoice(account=globex, period=last_month, lines=lines)
    services.line_item_add(
        invoice=draft,
        name="Support plan — premium, 24/7, with a named engineer",
        description="Includes two on-site visits per quarter and a quarterly review",
        quantity=Decimal("1"),
        unit_price=Decimal("1250.00"),
        actor="test",
    )
    paid = make_invoice(account=initech, period=last_month, lines=long_line, state=S.PAID)
    api_key_create(name="Accounting system export (read only)", scope="read", account=acme)
    return {
        "month": format_month(last_month),
        "outstanding": outstanding,
        "draft": draft,
        "paid": paid,
    }


def message(page) -> str:
    return page.locator("ul.messagelist li").first.inner_text()


def open_invoice(page, live_server, invoice: Invoice) -> None:
    page.goto(f"{live_server.url}/admin/invoices/invoice/{invoice.pk}/change/")


def test_a_clerks_day(live_server, browser_page, finance_login, books):
    page = browser_page
    sign_in(page, live_server, *finance_login)
    fits(page, "clerk-01-index")

    # 1. last month's outstanding invoices: "Outstanding", then the month
    page.goto(f"{live_server.url}/admin/invoices/invoice/")
    with page.expect_navigation():
        page.click("#changelist-filter a[href*='outstanding=yes']")
    with page.expect_navigation():
        page.click(f"#changelist-filter a[href*='month={books['month']}']")
    rows = page.locator("#result_list tbody tr")
    numbers = {invoice.friendly_id for invoice in books["outstanding"]}
    assert {rows.nth(i).locator("th").inner_text() for i in range(rows.count())} == numbers
    assert "Payment failed" in page.locator("#result_list").inner_text()
    assert page.locator("#selection-totals").is_visible()
    fits(page, "clerk-02-outstanding-last-month")

    # 2. issue the draft from its page
    draft = books["draft"]
    open_invoice(page, live_server, draft)
    assert page.locator("h1").inner_text().startswith("Edit draft")
    assert (
        "801" in page.locator("#line_items-group").inner_text()
        or page.locator("#line_items-group input[value='801']").count()
    )
    fits(page, "clerk-03-draft")
    with page.expect_navigation():
        page.click("#invoice-actions button:has-text('Issue')")
    draft.refresh_from_db()
    assert draft.state == S.PENDING
    assert message(page) == (
        f"Issued invoice {draft.friendly_id} to {draft.account.org_name}, due {draft.due_on}."
    )
    assert page.locator("h1").inner_text() == f"View invoice {draft.friendly_id}"
    lines = page.locator("#line_items-group").inner_text()
    assert "801" in lines and "801.0000" not in lines and "0.0416" in lines
    assert "0.04160000" not in lines
    assert "moved it from Draft to Awaiting payment" in page.locator("ol.timeline").inner_text()
    fits(page, "clerk-04-issued")

    # 3. a bank transfer came in for half of Acme's invoice: record it, then the rest
    acme = books["outstanding"][0]
    part = (acme.cost / 2).quantize(Decimal("0.01"))
    open_invoice(page, live_server, acme)
    buyer = page.locator(".fieldBox.field-buyer").inner_text()
    assert "Acme Rockets" in buyer and "DE811907980" in buyer and "{" not in buyer
    with page.expect_navigation():
        page.click("#invoice-actions button:has-text('Record payment')")
    page.fill("#id_amount", str(part))
    page.fill("#id_reference", "SEPA-2026-0041")
    page.select_option("#id_method", PaymentTransaction.Method.BANK_TRANSFER)
    fits(page, "clerk-05-record-payment")
    with page.expect_navigation():
        page.click("input[name=apply]")
    acme.refresh_from_db()
    assert acme.state == S.PENDING and acme.amount_paid == part
    assert acme.amount_due() == acme.cost - part
    # the rest: the amount left empty is what is still due
    open_invoice(page, live_server, acme)
    with page.expect_navigation():
        page.click("#invoice-actions button:has-text('Record payment')")
    page.fill("#id_reference", "SEPA-2026-0042")
    page.select_option("#id_method", PaymentTransaction.Method.BANK_TRANSFER)
    with page.expect_navigation():
        page.click("input[name=apply]")
    acme.refresh_from_db()
    assert acme.state == S.PAID and acme.amount_due() == 0
    assert f"invoice {acme.friendly_id} is paid" in message(page)
    payments = acme.payment_transactions.order_by("id")
    assert [(p.reference, p.method) for p in payments] == [
        ("SEPA-2026-0041", "bank_transfer"),
        ("SEPA-2026-0042", "bank_transfer"),
    ]
    fits(page, "clerk-06-paid")

    # 4. cancel Globex's invoice, saying why
    globex = books["outstanding"][1]
    open_invoice(page, live_server, globex)
    with page.expect_navigation():
        page.click("#invoice-actions button:has-text('Cancel')")
    page.fill("#id_reason", "Billed twice: replaced by the corrected invoice")
    with page.expect_navigation():
        page.click("input[name=apply]")
    globex.refresh_from_db()
    assert globex.state == S.CANCELLED
    assert message(page) == f"Cancelled invoice {globex.friendly_id} of {globex.account.org_name}."
    timeline = page.locator("ol.timeline").inner_text()
    assert "finance" in timeline and "Billed twice" in timeline
    assert "#invoice-actions" not in page.content() or page.locator("#invoice-actions").count() == 0
    fits(page, "clerk-07-cancelled")

    # 5. download the issued invoice's PDF from its page: the clerk's words on it too
    open_invoice(page, live_server, draft)
    with page.expect_download() as download_info:
        page.click("a#download-pdf")
    target = ARTIFACTS / f"clerk-invoice-{draft.friendly_id}.pdf"
    download_info.value.save_as(target)
    text = PdfReader(target).pages[0].extract_text()
    assert draft.friendly_id in text and "Globex" in text
    assert "PAYMENT DUE" in text.upper() and "PENDING" not in text.upper()

    # the action is in Recent actions on the index
    page.goto(f"{live_server.url}/admin/")
    recent = page.locator("#recent-actions-module").inner_text()
    assert globex.friendly_id in recent and acme.friendly_id in recent


def test_every_finance_page_fits_1280px(live_server, browser_page, finance_login, books):
    page = browser_page
    sign_in(page, live_server, *finance_login)
    pages = {
        "fit-invoice-list": "/admin/invoices/invoice/",
        "fit-draft": f"/admin/invoices/invoice/{books['draft'].pk}/change/",
        "fit-issued": f"/admin/invoices/invoice/{books['outstanding'][0].pk}/change/",
        "fit-paid": f"/admin/invoices/invoice/{books['paid'].pk}/change/",
        "fit-accounts": "/admin/accounts/account/",
        "fit-api-keys": "/admin/accounts/apikey/",
        "fit-payments": "/admin/invoices/paymenttransaction/",
        "fit-dashboard": "/staff/dashboard/",
        "fit-receivables": "/staff/receivables/",
    }
    for name, url in pages.items():
        page.goto(live_server.url + url)
        fits(page, name)
    # no list hides columns in a sideways scroll: invoices, accounts (with the card), keys
    page.goto(live_server.url + "/admin/invoices/invoice/")
    assert clipped(page, "#changelist .results, #result_list td, #result_list th") == []
    page.goto(live_server.url + "/admin/accounts/account/")
    assert "4242" in page.locator("#result_list").inner_text()
    assert clipped(page, "#changelist .results, #result_list td, #result_list th") == []
    page.goto(live_server.url + "/admin/accounts/apikey/")
    assert clipped(page, "#changelist .results, #result_list td, #result_list th") == []
    page.goto(live_server.url + f"/admin/invoices/invoice/{books['draft'].pk}/change/")
    assert clipped(page, "#line_items-group, #line_items-group table") == []
