"""Staff roles as groups, least privilege (SPEC §2). Reception is 0003_reception_group.

- office: the seminar office. Applications (view, change: edits always carry a reason),
  duplicate review, the lottery console, the outbox, the audit log, arrivals and check-in;
  editions, sessions and booths read only. Never children's health notes.
- childcare: read only, the children of the sessions a user is assigned to
  (childcare.ChildcareAssignment), with their health notes; nothing of the parents but the
  application number.
- administrators: everything in the project's apps, except writing the audit log, which
  nobody does by hand. Staff accounts and groups stay with superusers.

Permissions are listed here, frozen, rather than imported: a later change of a role is a new
migration that says so.
"""

from django.db import migrations

PROJECT_APPS = ["registration", "childcare", "lottery"]

OFFICE = {
    "registration": [
        "view_application",
        "change_application",
        "view_duplicateflag",
        "change_duplicateflag",
        "view_outboxemail",
        "view_auditevent",
        "view_attendance",
        "check_in",
        "view_edition",
        "view_session",
        "view_option",
        "view_organisation",
        "view_booth",
    ],
    "childcare": ["view_child", "view_childcareband"],
    "lottery": [
        "view_lotteryrun",
        "change_lotteryrun",
        "view_lotteryresult",
        "view_place",
        "view_lotteryevent",
    ],
}

CHILDCARE = {"childcare": ["view_child", "view_health_notes"]}

# The audit log is append-only: the admin refuses these to everyone, superusers included.
NOBODY = {"registration": ["add_auditevent", "change_auditevent", "delete_auditevent"]}


def _permissions(Permission, by_app):  # type: ignore[no-untyped-def]
    wanted = {(app, codename) for app, codenames in by_app.items() for codename in codenames}
    candidates = Permission.objects.filter(content_type__app_label__in=list(by_app)).select_related(
        "content_type"
    )
    found = [p for p in candidates if (p.content_type.app_label, p.codename) in wanted]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        # A renamed model or permission must not silently shrink a role.
        raise RuntimeError(f"Permissions missing for the staff roles: {sorted(missing)}")
    return found


def create_staff_roles(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.contrib.auth.management import create_permissions

    alias = schema_editor.connection.alias
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, verbosity=0, using=alias, apps=apps)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    office, _ = Group.objects.get_or_create(name="office")
    office.permissions.set(_permissions(Permission, OFFICE))

    childcare, _ = Group.objects.get_or_create(name="childcare")
    childcare.permissions.set(_permissions(Permission, CHILDCARE))

    administrators, _ = Group.objects.get_or_create(name="administrators")
    nobody = {p.pk for p in _permissions(Permission, NOBODY)}
    administrators.permissions.set(
        Permission.objects.filter(content_type__app_label__in=PROJECT_APPS).exclude(pk__in=nobody)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registration", "0005_edition_shredded_at"),
        ("childcare", "0002_staff_assignment_health_notes"),
        ("lottery", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_staff_roles, migrations.RunPython.noop)]
