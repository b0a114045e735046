"""Finance works with credit notes and sees the credit balances; the Auditor views them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = (
    ("invoices", "creditnote"),
    ("invoices", "creditnoteline"),
    ("accounts", "accountcreditentry"),
)


def _permissions(apps):
    for label in ("accounts", "invoices"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True  # the migration state's stub lacks it
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.none()
    for app_label, model in MODELS:
        perms |= Permission.objects.filter(
            content_type__app_label=app_label, content_type__model=model
        )
    return perms


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    perms = _permissions(apps)
    finance = Group.objects.filter(name="Finance").first()
    if finance is not None:
        finance.permissions.add(*perms.filter(codename__startswith="view_"))
    auditor = Group.objects.filter(name="Auditor").first()
    if auditor is not None:
        auditor.permissions.add(*perms.filter(codename__startswith="view_"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_account_credit_entry"),
        ("invoices", "0007_credit_notes_and_payments"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
