"""Staff groups on the delivery models: Finance views and resends messages and
manages webhook endpoints, Auditor only views."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("notification", "webhookendpoint", "webhookattempt")


def forwards(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the
    # groups can be given them on a fresh database.
    app_config = apps.get_app_config("invoices")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(
        content_type__app_label="invoices", content_type__model__in=MODELS
    )
    finance = Group.objects.filter(name="Finance").first()
    if finance is not None:
        finance.permissions.add(*perms.filter(codename__regex=r"^(view|change)_"))
    auditor = Group.objects.filter(name="Auditor").first()
    if auditor is not None:
        auditor.permissions.add(*perms.filter(codename__startswith="view_"))


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0010_delivery"),
        ("accounts", "0002_staff_groups_and_seller"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
