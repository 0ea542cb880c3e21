"""Staff roles (groups made by migration 0006_staff_roles): each can do its job and no more."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from childcare.models import Child, ChildcareAssignment
from registration.models import Application, AuditEvent, DuplicateFlag, Session
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import applicant, closed_edition, draw_in_order
from tests.staff import admin_url, member, office_url

pytestmark = pytest.mark.django_db

NOTE = "卵アレルギー、エピペン持参"


def child_of(application: Application, name: str = "太郎") -> Child:
    return Child.objects.create(
        application=application,
        name=name,
        name_kana="タロウ",
        date_of_birth=dt.date.today() - dt.timedelta(days=3 * 365),
        notes=NOTE,
    )


def permissions(group: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=group).permissions.select_related("content_type")
    }


def test_it_creates_the_roles_with_least_privilege():
    assert permissions("office") == {
        "registration.view_application",
        "registration.change_application",
        "registration.view_duplicateflag",
        "registration.change_duplicateflag",
        "registration.view_outboxemail",
        "registration.resend_outboxemail",
        "registration.view_auditevent",
        "registration.view_attendance",
        "registration.check_in",
        "registration.view_edition",
        "registration.view_session",
        "registration.view_option",
        "registration.view_organisation",
        "registration.view_booth",
        "childcare.view_child",
        "childcare.view_childcareband",
        "lottery.view_lotteryrun",
        "lottery.change_lotteryrun",
        "lottery.view_lotteryresult",
        "lottery.view_place",
        "lottery.view_lotteryevent",
    }
    assert permissions("childcare") == {"childcare.view_child", "childcare.view_health_notes"}
    assert permissions("reception") == {"registration.check_in", "registration.view_attendance"}
    administrators = permissions("administrators")
    assert {
        "childcare.view_health_notes",
        "childcare.add_childcareassignment",
        "registration.add_edition",
        "lottery.change_lotteryrun",
    } <= administrators
    assert not {p for p in administrators if p.endswith("_auditevent") and "view" not in p}
    assert not {p for p in administrators if p.startswith("auth.")}


# --- Office ---------------------------------------------------------------------------------


def test_the_office_can_do_its_work(client, edition):
    member(client, "office")
    application = ApplicationFactory(edition=edition)
    session = option(edition, "tama:venue").session
    for page in [
        admin_url("registration_application_changelist"),
        admin_url("registration_application_change", application.pk),
        office_url("application_status", application.pk),
        office_url("duplicate_review"),
        admin_url("registration_duplicateflag_changelist"),
        admin_url("registration_outboxemail_changelist"),
        admin_url("registration_auditevent_changelist"),
        admin_url("registration_attendance_changelist"),
        office_url("checkin", session.pk),
        office_url("lottery_console", edition.code),
        admin_url("childcare_child_changelist"),
        admin_url("registration_edition_changelist"),
    ]:
        assert client.get(page).status_code == 200, page


def test_the_office_reads_but_does_not_set_up_editions_staff_or_history(client, edition):
    member(client, "office")
    application = ApplicationFactory(edition=edition)
    event = AuditEvent.objects.create(action="x", actor_label="system", application=application)
    for page in [
        admin_url("registration_edition_add"),
        admin_url("registration_application_add"),
        admin_url("registration_application_delete", application.pk),
        admin_url("registration_auditevent_delete", event.pk),
        admin_url("childcare_childcareassignment_changelist"),
        admin_url("auth_user_changelist"),
    ]:
        assert client.get(page).status_code == 403, page
    for page in [
        admin_url("registration_session_change", option(edition, "tama:venue").session.pk),
        admin_url("registration_auditevent_change", event.pk),
    ]:
        response = client.get(page)
        assert response.status_code == 200 and b'name="_save"' not in response.content, page


def test_the_office_never_sees_childrens_health_notes(client, edition):
    member(client, "office")
    application = ApplicationFactory(edition=edition)
    child = child_of(application)
    pages = [
        admin_url("registration_application_change", application.pk),
        admin_url("childcare_child_changelist"),
        admin_url("childcare_child_change", child.pk),
        admin_url("registration_auditevent_changelist"),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert NOTE not in response.content.decode(), page
    # ... while the child is there, by name.
    assert "太郎" in client.get(pages[0]).content.decode()
    # Nor can the notes be guessed by filtering on them.
    for url, lookup in [
        (admin_url("childcare_child_changelist"), "notes__contains"),
        (admin_url("registration_application_changelist"), "childcare_children__notes__contains"),
    ]:
        assert client.get(url, {lookup: "卵"}).status_code == 400, lookup


# --- Childcare ------------------------------------------------------------------------------


@pytest.fixture
def two_sessions(edition):  # type: ignore[no-untyped-def]
    """One child choosing the Tama venue, one choosing the central venue, one online only."""
    tama = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:venue"))
    center = ApplicationFactory(edition=edition, choice_1=option(edition, "center:venue"))
    online = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    withdrawn = ApplicationFactory(
        edition=edition, choice_1=option(edition, "tama:venue"), status="withdrawn"
    )
    return {
        "tama": child_of(tama, "多摩の子"),
        "center": child_of(center, "都心の子"),
        "online": child_of(online, "オンラインの子"),
        "withdrawn": child_of(withdrawn, "辞退の子"),
    }


def assign(user, edition, code: str) -> Session:  # type: ignore[no-untyped-def]
    session = Session.objects.get(edition=edition, code=code)
    ChildcareAssignment.objects.create(user=user, session=session)
    return session


def roster(client) -> set[str]:  # type: ignore[no-untyped-def]
    response = client.get(admin_url("childcare_child_changelist"))
    assert response.status_code == 200
    return {c.name for c in response.context["cl"].result_list}


def test_childcare_staff_read_the_roster_of_their_session_with_health_notes(
    client, edition, two_sessions
):
    user = member(client, "childcare")
    assign(user, edition, "tama")
    assert roster(client) == {"多摩の子"}
    child = two_sessions["tama"]
    page = client.get(admin_url("childcare_child_change", child.pk)).content.decode()
    application = child.application
    assert NOTE in page and child.name in page and application.number in page
    for contact in (application.email, application.phone, application.family_name):
        assert contact not in page
    assert b'name="_save"' not in client.get(admin_url("childcare_child_change", child.pk)).content


def test_childcare_staff_cannot_open_another_sessions_children(client, edition, two_sessions):
    user = member(client, "childcare")
    assign(user, edition, "tama")
    other = two_sessions["center"]
    response = client.get(admin_url("childcare_child_change", other.pk), follow=True)
    assert other.name not in response.content.decode()
    assert roster(client) == {"多摩の子"}
    session = Session.objects.get(edition=edition, code="center")
    # A session the filter does not offer is a forged link: refused, nothing shown.
    filtered = client.get(admin_url("childcare_child_changelist"), {"session": session.pk})
    assert filtered.status_code == 400
    assert other.name not in filtered.content.decode()


def test_childcare_staff_without_an_assignment_see_nobody(client, edition, two_sessions):
    member(client, "childcare")
    assert roster(client) == set()


def test_childcare_staff_cannot_open_applications_or_contact_data(client, edition, two_sessions):
    member(client, "childcare")
    application = two_sessions["tama"].application
    for page in [
        admin_url("registration_application_changelist"),
        admin_url("registration_application_change", application.pk),
        office_url("duplicate_review"),
        admin_url("registration_outboxemail_changelist"),
        admin_url("registration_auditevent_changelist"),
        office_url("lottery_console", edition.code),
    ]:
        assert client.get(page).status_code == 403, page
    # Nor through a lookup on the roster.
    response = client.get(
        admin_url("childcare_child_changelist"), {"application__email": application.email}
    )
    assert response.status_code == 400 or application.email not in response.content.decode()


def test_after_the_draw_the_roster_follows_the_place_held():
    edition = closed_edition(tama_venue=10, center_venue=10)
    won_tama = applicant(edition, "AAAAAAAA", ["tama:venue", "center:venue"], childcare=1)
    won_center = applicant(edition, "BBBBBBBB", ["center:venue"], childcare=1)
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    center = Session.objects.get(edition=edition, code="center")
    on_roster = set(Child.objects.at_sessions([center]).values_list("application", flat=True))
    assert on_roster == {won_center.pk}
    assert won_tama.place.option.code == "tama:venue"


# --- Reception ------------------------------------------------------------------------------


def test_reception_checks_in_and_opens_nothing_else(client, edition):
    member(client, "reception")
    application = ApplicationFactory(edition=edition)
    child = child_of(application)
    DuplicateFlag.objects.create(
        application=application, other=ApplicationFactory(edition=edition), reason="phone"
    )
    session = option(edition, "tama:venue").session
    assert client.get(office_url("checkin", session.pk)).status_code == 200
    for page in [
        admin_url("registration_application_changelist"),
        admin_url("registration_application_change", application.pk),
        office_url("duplicate_review"),
        admin_url("registration_duplicateflag_changelist"),
        admin_url("registration_auditevent_changelist"),
        admin_url("registration_outboxemail_changelist"),
        admin_url("childcare_child_changelist"),
        admin_url("childcare_child_change", child.pk),
        office_url("lottery_audit", edition.code),
    ]:
        assert client.get(page).status_code == 403, page


# --- Exports (office/exports/) -------------------------------------------------------------


def test_exports_follow_the_roles(client, edition, two_sessions):
    def export(name: str, *args: object) -> int:
        url = reverse(f"office:export_{name}", args=args)
        return int(client.get(url).status_code)

    tama = Session.objects.get(edition=edition, code="tama")
    center = Session.objects.get(edition=edition, code="center")

    member(client, "reception")
    assert export("edition_applications", edition.code, "csv") == 403
    assert export("session_applications", tama.pk, "csv") == 403
    assert export("childcare", tama.pk, "csv") == 403

    user = member(client, "childcare")
    assign(user, edition, "tama")
    assert export("edition_applications", edition.code, "csv") == 403
    assert export("childcare", tama.pk, "csv") == 200
    assert export("childcare", center.pk, "csv") == 403

    member(client, "office")
    assert export("edition_applications", edition.code, "csv") == 200
    assert export("childcare", center.pk, "csv") == 200
