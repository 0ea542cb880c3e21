"""Retries with back-off for temporary SMTP failures, and a permission to send a failed e-mail
again, given to the office and the administrators (0006_staff_roles has the roles)."""

from django.db import migrations, models


def grant_resend(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.contrib.auth.management import create_permissions

    alias = schema_editor.connection.alias
    config = apps.get_app_config("registration")
    config.models_module = True
    create_permissions(config, verbosity=0, using=alias, apps=apps)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    resend = Permission.objects.get(
        content_type__app_label="registration", codename="resend_outboxemail"
    )
    for group in Group.objects.filter(name__in=["office", "administrators"]):
        group.permissions.add(resend)


class Migration(migrations.Migration):
    dependencies = [
        ("registration", "0006_staff_roles"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="outboxemail",
            options={
                "ordering": ["-created_at"],
                "permissions": [("resend_outboxemail", "Can send a failed e-mail again")],
                "verbose_name": "outbox e-mail",
                "verbose_name_plural": "outbox e-mails",
            },
        ),
        migrations.AddField(
            model_name="outboxemail",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="next attempt"),
        ),
        migrations.RunPython(grant_resend, migrations.RunPython.noop),
    ]
