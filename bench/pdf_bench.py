"""Measure the back office's PDF and changelist timings, in process, and print figures.

- PDF rendering: a 10-line invoice rendered N times (p50/p95; target p50 <= 150 ms);
- a stored PDF served by the admin's PDF view (p50/p95; target <= 5 ms);
- the invoice changelist, unfiltered and filtered (p50; target < 1 s at a million
  invoices), on whatever database DATABASE_URL names; bench/generate.py loads one.

Everything it writes (a user, an account, an invoice) is rolled back at the
end, and the PDF goes to a temporary MEDIA_ROOT, so it can run against the
benchmark database without changing it. Figures, never assertions.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python bench/pdf_bench.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="pdf-bench-")
os.environ["ALLOWED_HOSTS"] = "testserver"

PDF_P50_MS = 150.0
SERVE_P50_MS = 5.0
CHANGELIST_MS = 1000.0


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _time(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="PDF renderings to time")
    parser.add_argument("--serve-runs", type=int, default=200, help="stored-PDF requests")
    parser.add_argument("--list-runs", type=int, default=5, help="requests per changelist URL")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client
    from django.urls import reverse

    from accounts.models import Account
    from invoices import services
    from invoices.models import Invoice
    from invoices.pdf import invoice_pdf_bytes
    from invoices.tasks import invoice_render_pdf

    rows: list[tuple[str, str, str]] = []
    with transaction.atomic():
        account = Account.objects.create(
            org_name="PDF bench buyer", currency="EUR", vat_rate=Decimal("21")
        )
        invoice = services.invoice_create(account=account, actor="bench")
        for n in range(10):
            services.line_item_add(
                invoice=invoice,
                name=f"Service {n}",
                description="Metered usage",
                quantity=Decimal(100 + n),
                unit_price=Decimal("0.0416"),
                actor="bench",
            )
        invoice.refresh_from_db()
        invoice_pdf_bytes(invoice)  # warm-up: fonts and templates load once per process
        p50, p95 = _ms(_time(lambda: invoice_pdf_bytes(invoice), args.runs))
        rows.append(("render a 10-line invoice PDF", f"p50 {p50:.1f} ms, p95 {p95:.1f} ms",
                     f"p50 <= {PDF_P50_MS:.0f} ms"))  # fmt: skip

        # Issue it (on_commit does not fire inside this transaction: render directly).
        services.invoice_issue(invoice=invoice, actor="bench")
        invoice_render_pdf(invoice.pk)
        user = get_user_model().objects.create_user("pdf-bench", is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(user)
        pdf_url = reverse("admin:invoices_invoice_pdf", args=[invoice.pk])

        def serve() -> None:
            response = client.get(pdf_url)
            b"".join(response.streaming_content)  # type: ignore[attr-defined]  # a FileResponse
            assert response.status_code == 200

        serve()
        p50, p95 = _ms(_time(serve, args.serve_runs))
        rows.append(("serve the stored PDF (admin view, incl. session and auth)",
                     f"p50 {p50:.2f} ms, p95 {p95:.2f} ms", f"<= {SERVE_P50_MS:.0f} ms"))  # fmt: skip

        total = Invoice.objects.count() if connection.vendor != "postgresql" else None
        if total is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = 'invoices_invoice'"
                )
                total = cursor.fetchone()[0]
        newest = Invoice.objects.order_by("-period").values_list("period", flat=True).first()
        month = newest.strftime("%Y-%m")
        changelist = reverse("admin:invoices_invoice_changelist")
        for label, query in [
            ("unfiltered", ""),
            ("state=paid", "?state__exact=paid"),
            (f"month={month}", f"?month={month}"),
            ("overdue", "?overdue=yes"),
            ("currency=EUR", "?currency=EUR"),
            ("search org name", "?q=Bench"),
            ("search number prefix", f"?q={month}-0000"),
        ]:
            url = changelist + query
            client.get(url)  # warm-up
            p50, p95 = _ms(_time(lambda url=url: client.get(url), args.list_runs))
            rows.append((f"changelist {label} ({total:,} invoices)",
                         f"p50 {p50:.0f} ms, max {p95:.0f} ms", f"< {CHANGELIST_MS:.0f} ms"))  # fmt: skip
        transaction.set_rollback(True)

    width = max(len(name) for name, _, _ in rows)
    print(f"database: {connection.vendor}")  # noqa: T201
    for name, figure, target in rows:
        print(f"{name:<{width}}  {figure:<28}  target {target}")  # noqa: T201


if __name__ == "__main__":
    main()
