"""A read that renders a missing representation while a writer holds the invoice's
account stores nothing (PostgreSQL's row locks; SQLite serialises writers instead)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from accounts.models import Account
from invoices import representations
from invoices.models import Invoice, InvoiceRepresentation
from tests.factories import make_invoice

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Kind = InvoiceRepresentation.Kind


def _read(invoice_id: int) -> str:
    rows = list(
        representations.with_stored(Invoice.objects.filter(pk=invoice_id), Kind.THREESCALE_XML)
    )
    return representations.bodies(rows, Kind.THREESCALE_XML)[0][1]


def test_a_render_beside_a_writer_is_served_but_not_stored():
    invoice = make_invoice()
    InvoiceRepresentation.objects.all().delete()
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                Account.objects.select_for_update().get(pk=invoice.account_id)
                Account.objects.filter(pk=invoice.account_id).update(org_name="Renamed")
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        # The writer has not committed: the read shows what was committed, and keeps nothing.
        assert "Renamed" not in _read(invoice.pk)
        assert not InvoiceRepresentation.objects.exists()
    finally:
        release.set()
        thread.join(timeout=30)
    assert done.is_set()
    assert "<org_name>Renamed</org_name>" in _read(invoice.pk)
    assert InvoiceRepresentation.objects.filter(invoice=invoice).count() == 3
