"""The Finance group works with invoices and accounts; the tables only the software
reads (idempotency keys, invoice number counters, the raw invoice event rows) are
not theirs to browse. The invoice page still shows each invoice's timeline."""

from django.db import migrations

TECHNICAL = (
    ("accounts", "idempotencykey"),
    ("invoices", "invoicecounter"),
    ("invoices", "invoiceevent"),
)


def _technical_permissions(apps):
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.none()
    for app_label, model in TECHNICAL:
        perms |= Permission.objects.filter(
            content_type__app_label=app_label, content_type__model=model
        )
    return perms


def forwards(apps, schema_editor):
    finance = apps.get_model("auth", "Group").objects.filter(name="Finance").first()
    if finance is not None:
        finance.permissions.remove(*_technical_permissions(apps))


def backwards(apps, schema_editor):
    finance = apps.get_model("auth", "Group").objects.filter(name="Finance").first()
    if finance is not None:
        finance.permissions.add(*_technical_permissions(apps).exclude(codename__startswith="delete_"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_default_currency_and_terms"),
        ("invoices", "0005_state_labels"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
