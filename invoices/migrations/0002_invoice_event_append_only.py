"""Make invoice_events append-only in the database itself, not only in the ORM."""

from django.db import migrations

POSTGRES_UP = """
CREATE OR REPLACE FUNCTION invoices_invoiceevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'invoice events are append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER invoices_invoiceevent_no_update
    BEFORE UPDATE ON invoices_invoiceevent
    FOR EACH ROW EXECUTE FUNCTION invoices_invoiceevent_append_only();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS invoices_invoiceevent_no_update ON invoices_invoiceevent;
DROP FUNCTION IF EXISTS invoices_invoiceevent_append_only();
"""
SQLITE_UP = """
CREATE TRIGGER invoices_invoiceevent_no_update BEFORE UPDATE ON invoices_invoiceevent
BEGIN SELECT RAISE(ABORT, 'invoice events are append-only'); END;
"""
SQLITE_DOWN = "DROP TRIGGER IF EXISTS invoices_invoiceevent_no_update;"


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_UP)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("invoices", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
