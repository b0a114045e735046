"""Indexes for the finance admin and the staff dashboard.

- currency + newest first: the changelist's currency filter, in list order;
- state + paid_at: revenue per month and top accounts (paid invoices by payment date);
- number prefix (PostgreSQL varchar_pattern_ops): searching "2026-11-" uses an
  index whatever the database collation;
- failed payments by date: the dashboard's last-30-days figures.

They are built with CREATE INDEX CONCURRENTLY on PostgreSQL, so adding them to a
table of millions of invoices does not block issuing and charging. They are
raw SQL because the ORM cannot declare operator classes portably and the
concurrent build must run outside a transaction; the model state is unchanged.
"""

from django.db import migrations

INDEXES = [
    (
        "invoice_currency_newest_idx",
        "invoices_invoice (currency, created_at DESC, id DESC)",
        None,
    ),
    ("invoice_state_paid_at_idx", "invoices_invoice (state, paid_at)", None),
    (
        "invoice_number_prefix_idx",
        "invoices_invoice (friendly_id varchar_pattern_ops)",
        "postgresql",
    ),
    (
        "payment_failed_created_idx",
        "invoices_paymenttransaction (created_at) WHERE NOT success",
        "postgresql",
    ),
    (
        "payment_failed_created_idx",
        "invoices_paymenttransaction (created_at) WHERE success = 0",
        "sqlite",
    ),
]


def _indexes(vendor):
    return [(name, target) for name, target, only in INDEXES if only in (None, vendor)]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    concurrently = "CONCURRENTLY " if vendor == "postgresql" else ""
    for name, target in _indexes(vendor):
        schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS {name} ON {target}")


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    concurrently = "CONCURRENTLY " if vendor == "postgresql" else ""
    for name, _ in _indexes(vendor):
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("invoices", "0002_invoice_event_append_only")]

    operations = [migrations.RunPython(forwards, backwards)]
