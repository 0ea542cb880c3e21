"""Reception on the day: find, check in, count, print — for the reception role only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from registration.models import Application, Attendance, AuditEvent
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def drawn():  # type: ignore[no-untyped-def]
    edition = closed_edition(tama_venue=4)
    applicant(edition, "AAAAAAAA", ["tama:venue"], adults=2)
    applicant(edition, "BBBBBBBB", ["tama:venue"])
    applicant(edition, "CCCCCCCC", ["tama:online"])
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC"])
    return edition, edition.sessions.get(code="tama")


@pytest.fixture
def reception(client):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username="desk", is_staff=True)
    user.groups.add(Group.objects.get(name="reception"))
    client.force_login(user)
    return client


def checkin(session):  # type: ignore[no-untyped-def]
    return reverse("office:checkin", args=[session.pk])


def found(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.number for a in response.context["results"]]


@pytest.mark.parametrize("query", ["AAAAAAAA", "aaaaaaaa", "やまだ", "ヤマダ"])
def test_reception_finds_a_venue_winner(reception, drawn, query):
    _, session = drawn
    numbers = found(reception.get(checkin(session), {"q": query}))
    assert "AAAAAAAA" in numbers
    assert "CCCCCCCC" not in numbers  # online only: not expected at the venue


def test_reception_finds_by_phone_typed_with_hyphens(reception, drawn):
    _, session = drawn
    phone = Application.objects.get(number="BBBBBBBB").phone
    typed = f"{phone[:3]}-{phone[3:7]}-{phone[7:]}"
    assert found(reception.get(checkin(session), {"q": typed})) == ["BBBBBBBB"]


def test_marking_arrival_records_the_head_count_once_and_updates_the_counts(reception, drawn):
    _, session = drawn
    a = Application.objects.get(number="AAAAAAAA")
    arrive = reverse("office:arrive", args=[session.pk, a.pk])
    before = reception.get(reverse("office:checkin_counts", args=[session.pk])).json()
    assert before == {
        "expected_parties": 2,
        "expected_people": 3,
        "arrived_parties": 0,
        "arrived_people": 0,
    }
    reception.post(arrive, {"heads": 2})
    reception.post(arrive, {"heads": 2})  # a second tap changes nothing
    assert Attendance.objects.get(application=a).heads == 2
    [arrived] = AuditEvent.objects.filter(application=a, action="application.arrived")
    assert arrived.actor.username == "desk" and arrived.data == {"heads": 2}
    after = reception.get(reverse("office:checkin_counts", args=[session.pk])).json()
    assert after["arrived_parties"] == 1 and after["arrived_people"] == 2


def test_a_wrong_head_count_is_refused_with_a_message(reception, drawn):
    _, session = drawn
    a = Application.objects.get(number="BBBBBBBB")
    reception.post(reverse("office:arrive", args=[session.pk, a.pk]), {"heads": 9})
    assert not Attendance.objects.exists()


def test_the_printable_list_has_every_expected_party(reception, drawn):
    _, session = drawn
    html = reception.get(reverse("office:reception_list", args=[session.pk])).content.decode()
    assert "AAAAAAAA" in html and "BBBBBBBB" in html and "CCCCCCCC" not in html


def test_reception_cannot_open_applications_or_the_lottery(reception, drawn):
    edition, session = drawn
    assert reception.get(reverse("admin:registration_application_changelist")).status_code == 403
    assert reception.get(reverse("office:lottery_console", args=[edition.code])).status_code == 403


def test_other_staff_cannot_check_people_in(client, drawn):
    _, session = drawn
    user = get_user_model().objects.create(username="childcare", is_staff=True)
    client.force_login(user)
    assert client.get(checkin(session), {"q": "AAAAAAAA"}).status_code == 403
