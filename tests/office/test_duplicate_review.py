"""The duplicate review queue: open pairs side by side; keep both, or mark one (with a reason)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from childcare.models import Child
from registration import services
from registration.models import Application, AuditEvent, DuplicateFlag
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import applicant, closed_edition, draw_in_order, places

pytestmark = pytest.mark.django_db

QUEUE = reverse("office:duplicate_review")


@pytest.fixture
def office(client):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username="office-1", is_staff=True)
    user.groups.add(Group.objects.get(name="office"))
    client.force_login(user)
    client.user = user
    return client


def flag(a: Application, b: Application, *reasons: str) -> None:
    """As services.flag_duplicates does: both directions, one flag per reason."""
    for reason in reasons:
        DuplicateFlag.objects.create(application=a, other=b, reason=reason)
        DuplicateFlag.objects.create(application=b, other=a, reason=reason)


@pytest.fixture
def pair(edition):  # type: ignore[no-untyped-def]
    first = ApplicationFactory(
        edition=edition,
        phone="09011112222",
        email="first@example.jp",
        municipality="shinjuku",
        created_at=dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC),
    )
    second = ApplicationFactory(
        edition=edition,
        phone="09011112222",
        email="second@example.jp",
        choice_1=option(edition, "center:online"),
        created_at=dt.datetime(2026, 5, 2, 9, 0, tzinfo=dt.UTC),
    )
    Child.objects.create(
        application=first,
        name="太郎",
        name_kana="タロウ",
        date_of_birth=dt.date(2022, 5, 1),
        notes="ピーナッツアレルギー",
    )
    flag(first, second, "phone", "name")
    return first, second


def decide(client, a: Application, b: Application, **data: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("office:duplicate_decide", args=[a.pk, b.pk]), data)


def open_flag_count() -> int:
    return DuplicateFlag.objects.filter(resolution="").count()


def test_the_queue_shows_each_pair_once_side_by_side_with_its_reasons(office, pair):
    first, second = pair
    response = office.get(QUEUE)
    assert response.status_code == 200
    [(shown, rows, _form)] = response.context["pairs"]
    assert (shown.first, shown.second) == (first, second)
    assert sorted(shown.reasons) == ["name", "phone"]
    html = response.content.decode()
    for text in [
        first.number,
        second.number,
        *shown.reason_labels(),
        "first@example.jp",
        "second@example.jp",
        "09011112222",
        first.full_name,
        second.full_name_kana,
        "太郎 (タロウ) 2022-05-01",
        "tama:venue",
        "center:online",
        "2026-05-01",
    ]:
        assert text in html, text
    assert "ピーナッツアレルギー" not in html  # health notes are not for this page
    same = {value: is_same for _label, value, _other, is_same in rows}
    assert same["09011112222"] and not same["first@example.jp"]


def test_the_queue_leaves_out_reviewed_pairs_and_inactive_applications(office, edition, pair):
    kept_a, kept_b = ApplicationFactory.create_batch(2, edition=edition)
    flag(kept_a, kept_b, "child")
    DuplicateFlag.objects.filter(application__in=[kept_a, kept_b]).update(resolution="kept")
    gone, active = ApplicationFactory.create_batch(2, edition=edition)
    flag(gone, active, "phone")
    Application.objects.filter(pk=gone.pk).update(status="withdrawn")
    shown = [p for p, _rows, _form in office.get(QUEUE).context["pairs"]]
    assert [(p.first, p.second) for p in shown] == [pair]


def test_the_queue_takes_the_same_queries_for_many_pairs(office, edition, pair):
    with CaptureQueriesContext(connection) as few:
        office.get(QUEUE)
    for i in range(6):
        a, b = ApplicationFactory.create_batch(
            2, edition=edition, choice_2=option(edition, "center:online")
        )
        Child.objects.create(
            application=a, name=f"子{i}", name_kana="コ", date_of_birth=dt.date(2022, 1, 1)
        )
        flag(a, b, "phone", "child")
    with CaptureQueriesContext(connection) as many:
        response = office.get(QUEUE)
    assert len(response.context["pairs"]) == 7
    assert len(many) == len(few)


def test_keep_both_resolves_the_pair_and_logs_it_in_both_histories(office, pair):
    first, second = pair
    response = decide(office, first, second, action="keep")
    assert response.status_code == 302 and response.url == QUEUE
    flags = DuplicateFlag.objects.filter(application__in=pair)
    assert {f.resolution for f in flags} == {"kept"}
    assert all(f.resolved_by == office.user and f.resolved_at for f in flags)
    for this, that in ((first, second), (second, first)):
        this.refresh_from_db()
        assert this.status == "active"
        event = AuditEvent.objects.get(application=this, action="duplicate.kept")
        assert event.actor == office.user
        assert event.data == {"other": that.number, "flags": ["name", "phone"]}
    assert office.get(QUEUE).context["pairs"] == []


@pytest.mark.parametrize("status", ["duplicate", "invalid"])
def test_marking_one_of_a_pair_needs_a_reason(office, pair, status):
    first, second = pair
    response = decide(office, first, second, action=f"{status}:{second.pk}", reason=" ")
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.status == "active" and open_flag_count() == 4
    [message] = office.get(QUEUE).context["messages"]
    assert message.level == messages.ERROR


@pytest.mark.parametrize("status", ["duplicate", "invalid"])
def test_marking_one_of_a_pair_removes_it_with_the_reason_and_closes_its_flags(
    office, pair, edition, status
):
    first, second = pair
    third = ApplicationFactory(edition=edition)
    flag(third, second, "child")  # another pair with the same application
    decide(office, first, second, action=f"{status}:{second.pk}", reason="同じ世帯の再申込")
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == status and second.status_reason == "同じ世帯の再申込"
    assert first.status == "active"
    assert open_flag_count() == 0
    assert set(DuplicateFlag.objects.values_list("resolution", flat=True)) == {"marked"}
    event = AuditEvent.objects.get(application=second, action=f"application.marked_{status}")
    assert event.actor == office.user and event.reason == "同じ世帯の再申込"
    kept = AuditEvent.objects.get(application=first, action="duplicate.other_removed")
    assert kept.data["other"] == second.number and kept.data["status"] == status


def test_a_pair_is_decided_once_even_from_a_stale_page(office, pair):
    first, second = pair
    decide(office, first, second, action=f"duplicate:{second.pk}", reason="重複")
    decide(office, first, second, action=f"duplicate:{first.pk}", reason="重複")  # stale page
    first.refresh_from_db()
    assert first.status == "active"
    levels = [m.level for m in office.get(QUEUE).context["messages"]]
    assert levels == [messages.SUCCESS, messages.WARNING]
    with pytest.raises(services.AlreadyReviewed):
        services.duplicate_keep_both(application=first, other=second, actor=None)


def test_a_duplicate_found_after_the_draw_gives_its_place_to_the_waiting_list(client):
    edition = closed_edition(tama_venue=1)
    winner = applicant(edition, "AAAAAAAA", ["tama:venue"])
    waiting = applicant(edition, "BBBBBBBB", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    assert set(places(edition)) == {"AAAAAAAA"}
    twin = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    flag(winner, twin, "phone")
    user = get_user_model().objects.create_superuser("admin", "admin@example.jp", "x")
    client.force_login(user)
    decide(client, winner, twin, action=f"duplicate:{winner.pk}", reason="同一世帯")
    assert set(places(edition)) == {waiting.number}


def test_staff_who_may_only_read_flags_cannot_decide(client, pair):
    from django.contrib.auth.models import Permission

    first, second = pair
    user = get_user_model().objects.create(username="reader", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_duplicateflag", "view_application"])
    )
    client.force_login(user)
    page = client.get(QUEUE)
    assert page.status_code == 200 and b'value="keep"' not in page.content
    assert decide(client, first, second, action="keep").status_code == 403
    assert (
        decide(client, first, second, action=f"invalid:{first.pk}", reason="x").status_code == 403
    )
    assert open_flag_count() == 4


def test_decisions_are_posted(office, pair):
    first, second = pair
    url = reverse("office:duplicate_decide", args=[first.pk, second.pk])
    assert office.get(url, {"action": "keep"}).status_code == 405
    assert open_flag_count() == 4


def test_the_flag_list_links_to_the_queue_and_nobody_edits_flags_by_hand(office, pair):
    page = office.get(reverse("admin:registration_duplicateflag_changelist"))
    assert QUEUE in page.content.decode() and page.context["open_pairs"] == 1
    some_flag = DuplicateFlag.objects.first()
    assert some_flag is not None
    change = office.get(reverse("admin:registration_duplicateflag_change", args=[some_flag.pk]))
    assert b'name="_save"' not in change.content


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_staff_marking_opposite_sides_of_a_pair_at_once_remove_only_one(edition):
    from tests.concurrency import at_once

    a, b = ApplicationFactory.create_batch(2, edition=edition)
    flag(a, b, "phone", "name")
    staff = [
        get_user_model().objects.create(username=f"office-{i}", is_staff=True) for i in range(2)
    ]
    refused: list[int] = []

    def remove(i: int) -> None:
        mine, theirs = (a, b) if i == 0 else (b, a)
        try:
            services.duplicate_remove_one(
                remove=mine, keep=theirs, status="duplicate", actor=staff[i], reason="重複"
            )
        except services.AlreadyReviewed:
            refused.append(i)

    _, errors = at_once(remove, [0, 1])
    assert not errors, errors
    statuses = sorted(
        Application.objects.filter(pk__in=[a.pk, b.pk]).values_list("status", flat=True)
    )
    assert statuses == ["active", "duplicate"] and len(refused) == 1
