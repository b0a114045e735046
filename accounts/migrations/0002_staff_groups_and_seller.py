"""Staff groups (Finance changes and acts, Auditor only views) and the seller row."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

APPS = ("accounts", "invoices", "usage")


def forwards(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the
    # groups can be given them on a fresh database.
    for label in APPS:
        app_config = apps.get_app_config(label)
        app_config.models_module = True  # the migration state's stub lacks it
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label__in=APPS)
    finance, _ = Group.objects.get_or_create(name="Finance")
    finance.permissions.set(perms.exclude(codename__startswith="delete_"))
    auditor, _ = Group.objects.get_or_create(name="Auditor")
    auditor.permissions.set(perms.filter(codename__startswith="view_"))
    Seller = apps.get_model("accounts", "Seller")
    Seller.objects.get_or_create(id=1, defaults={"name": "Your Company"})


def backwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Finance", "Auditor"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("invoices", "0001_initial"),
        ("usage", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
