"""Staff groups on the pricing models: Finance changes and acts, Auditor only views."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("metric", "plan", "charge", "subscription")


def forwards(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the
    # groups can be given them on a fresh database.
    app_config = apps.get_app_config("usage")
    app_config.models_module = True  # the migration state's stub lacks it
    create_permissions(app_config, verbosity=0, apps=apps)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(
        content_type__app_label="usage", content_type__model__in=MODELS
    )
    finance = Group.objects.filter(name="Finance").first()
    if finance is not None:
        finance.permissions.add(*perms.exclude(codename__startswith="delete_"))
    auditor = Group.objects.filter(name="Auditor").first()
    if auditor is not None:
        auditor.permissions.add(*perms.filter(codename__startswith="view_"))


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0003_pricing"),
        ("accounts", "0002_staff_groups_and_seller"),
    ]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
