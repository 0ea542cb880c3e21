"""The audit trail: every staff edit of an application is logged (who, when, what, why), health
notes never copied; the log is filterable and nobody, superusers included, edits it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from childcare.models import Child
from registration import audit
from registration.models import Application, AuditEvent, DuplicateFlag
from tests.factories import ApplicationFactory, EditionFactory, option

pytestmark = pytest.mark.django_db

NOTE = "卵アレルギー"
NEW_NOTE = "卵と乳のアレルギー"


def change_url(application: Application) -> str:
    return reverse("admin:registration_application_change", args=[application.pk])


def change_form_data(response, **changes: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """What the browser posts back from the change page as shown, with some fields changed."""
    data: dict[str, Any] = {}

    def add(form: forms.BaseForm) -> None:
        for name, field in form.fields.items():
            value = form[name].value()
            key = form.add_prefix(name)
            if isinstance(field, forms.BooleanField):
                if value:
                    data[key] = "on"
            elif isinstance(value, list | tuple):
                data[key] = [str(v) for v in value]
            else:
                data[key] = "" if value is None else str(value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    data.update(changes)
    return data


def member(client, group: str):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username=f"{group}-staff", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


@pytest.fixture
def application(edition):  # type: ignore[no-untyped-def]
    application = ApplicationFactory(edition=edition, phone="09000000001")
    Child.objects.create(
        application=application,
        name="太郎",
        name_kana="タロウ",
        date_of_birth=dt.date(2022, 5, 1),
        notes=NOTE,
    )
    return application


def test_a_staff_edit_is_logged_with_the_fields_changed_and_the_reason(
    client, edition, application
):
    user = member(client, "office")
    page = client.get(change_url(application))
    center = option(edition, "center:online")
    data = change_form_data(
        page, phone="08099998888", choice_2=center.pk, change_reason="電話で番号変更の申し出"
    )
    response = client.post(change_url(application), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    application.refresh_from_db()
    assert application.phone == "08099998888" and application.choice_2 == center
    event = AuditEvent.objects.get(application=application, action="application.staff_changed")
    assert event.actor == user and event.actor_label == "office-staff"
    assert event.reason == "電話で番号変更の申し出"
    assert event.data == {
        "changed": {
            "phone": ["09000000001", "08099998888"],
            "choice_2": ["", "center:online"],
        }
    }
    assert application.updated_at >= event.at - dt.timedelta(seconds=1)
    history = client.get(change_url(application)).content.decode()
    assert "application.staff_changed" in history and "電話で番号変更の申し出" in history


def test_a_staff_edit_needs_a_reason(client, application):
    member(client, "office")
    data = change_form_data(client.get(change_url(application)), phone="08099998888")
    response = client.post(change_url(application), data)
    assert response.status_code == 200
    assert "change_reason" in response.context["adminform"].form.errors
    application.refresh_from_db()
    assert application.phone == "09000000001"
    assert not AuditEvent.objects.filter(action="application.staff_changed").exists()


def test_the_status_is_not_edited_on_the_form(client, application):
    member(client, "office")
    page = client.get(change_url(application))
    assert "status" not in page.context["adminform"].form.fields
    data = change_form_data(page, status="invalid", change_reason="x", given_name="花")
    client.post(change_url(application), data)
    application.refresh_from_db()
    assert application.status == "active" and application.given_name == "花"


def test_childrens_changes_are_logged_but_never_their_health_notes(client, application):
    admin = get_user_model().objects.create_superuser("admin", "admin@example.jp", "x")
    client.force_login(admin)
    page = client.get(change_url(application))
    [children] = [
        i.formset for i in page.context["inline_admin_formsets"] if i.formset.model is Child
    ]
    prefix = children.prefix
    data = change_form_data(
        page,
        **{
            f"{prefix}-0-name": "次郎",
            f"{prefix}-0-notes": NEW_NOTE,
            f"{prefix}-TOTAL_FORMS": "2",
            f"{prefix}-1-position": "2",
            f"{prefix}-1-name": "花子",
            f"{prefix}-1-name_kana": "ハナコ",
            f"{prefix}-1-date_of_birth": "2023-01-10",
            f"{prefix}-1-notes": "小麦",
            f"{prefix}-1-application": str(application.pk),
            "change_reason": "保護者から電話",
        },
    )
    response = client.post(change_url(application), data)
    assert response.status_code == 302
    notes = application.childcare_children.order_by("position").values_list("notes", flat=True)
    assert list(notes) == [NEW_NOTE, "小麦"]
    event = AuditEvent.objects.get(action="application.staff_changed")
    assert event.data == {
        "children": [
            {
                "child": 2,
                "change": "added",
                "changed": {
                    "position": ["", "2"],
                    "name": ["", "花子"],
                    "name_kana": ["", "ハナコ"],
                    "date_of_birth": ["", "2023-01-10"],
                },
                "values_not_recorded": ["notes"],
            },
            {
                "child": 1,
                "change": "changed",
                "changed": {"name": ["太郎", "次郎"]},
                "values_not_recorded": ["notes"],
            },
        ]
    }
    assert NOTE not in str(event.data) and NEW_NOTE not in str(event.data)


def test_a_staff_edit_that_makes_a_likely_duplicate_flags_it(client, edition, application):
    member(client, "office")
    twin = ApplicationFactory(edition=edition, phone="08011112222")
    data = change_form_data(
        client.get(change_url(application)), phone="08011112222", change_reason="番号の訂正"
    )
    client.post(change_url(application), data)
    assert DuplicateFlag.objects.filter(application=application, other=twin).exists()


def test_the_office_cannot_change_children_or_see_their_notes_on_the_form(client, application):
    member(client, "office")
    page = client.get(change_url(application))
    [children] = [
        i.formset for i in page.context["inline_admin_formsets"] if i.formset.model is Child
    ]
    assert "notes" not in children.forms[0].fields
    data = change_form_data(
        page, **{f"{children.prefix}-0-name": "次郎"}, change_reason="x", given_name="花"
    )
    client.post(change_url(application), data)
    assert application.childcare_children.get().name == "太郎"


# --- The audit log admin --------------------------------------------------------------------


@pytest.fixture
def superuser_client(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.jp", "x"))
    return client


def test_nobody_adds_changes_or_deletes_audit_events_not_even_a_superuser(
    superuser_client, application
):
    event = audit.log_action("application.submitted", application=application)
    url = reverse("admin:registration_auditevent_change", args=[event.pk])
    assert superuser_client.get(reverse("admin:registration_auditevent_add")).status_code == 403
    assert superuser_client.post(url, {"action": "forged", "reason": "x"}).status_code == 403
    delete = reverse("admin:registration_auditevent_delete", args=[event.pk])
    assert superuser_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = superuser_client.post(
        reverse("admin:registration_auditevent_changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert changelist.status_code in (200, 302)
    event.refresh_from_db()
    assert event.action == "application.submitted"
    page = superuser_client.get(url)
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_the_audit_log_filters_by_action_actor_edition_and_date(superuser_client, application):
    staff = get_user_model().objects.create(username="office-a", is_staff=True)
    other_edition = EditionFactory()
    now = dt.datetime.now(dt.UTC)
    by_staff = audit.log_action("application.staff_changed", actor=staff, application=application)
    by_parent = audit.log_action(
        "application.submitted", actor_label=audit.PARENT, application=application
    )
    elsewhere = audit.log_action("lottery.frozen", edition=other_edition)
    old = audit.log_action("application.submitted", application=application)
    AuditEvent.objects.filter(pk=old.pk).update(at=now - dt.timedelta(days=30))

    def shown(**params: Any) -> set[int]:
        response = superuser_client.get(reverse("admin:registration_auditevent_changelist"), params)
        assert response.status_code == 200
        return {e.pk for e in response.context["cl"].result_list}

    assert shown(action="application.staff_changed") == {by_staff.pk}
    assert shown(actor__id__exact=staff.pk) == {by_staff.pk}
    assert shown(edition__id__exact=other_edition.pk) == {elsewhere.pk}
    assert by_parent.pk in shown(actor_label="parent")
    since = (now - dt.timedelta(days=1)).isoformat()
    assert old.pk not in shown(at__gte=since) and by_staff.pk in shown(at__gte=since)
