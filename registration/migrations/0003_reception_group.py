"""The reception role: staff who check people in on the day, and nothing else."""

from django.db import migrations


def create_reception_group(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="reception")
    group.permissions.set(
        Permission.objects.filter(
            content_type__app_label="registration",
            codename__in=["check_in", "view_attendance"],
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registration", "0002_attendance"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_reception_group, migrations.RunPython.noop)]
