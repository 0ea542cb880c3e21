"""The lottery console: one form per step, each posting to its own view, and the audit log
naming the staff member behind every step."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

from lottery.models import LotteryRun
from registration.models import AuditEvent, DuplicateFlag
from tests.factories import ApplicationFactory
from tests.lottery import drawn

pytestmark = pytest.mark.django_db


@pytest.fixture
def closed_edition(db):  # type: ignore[no-untyped-def]
    """Registration closed an hour ago; the draw is due tomorrow."""
    return drawn.closed_edition()


def console(edition):  # type: ignore[no-untyped-def]
    return reverse("office:lottery_console", args=[edition.code])


def step(name, edition):  # type: ignore[no-untyped-def]
    return reverse(f"office:lottery_{name}", args=[edition.code])


@pytest.fixture
def office_user(db):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username="sato.office", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_lotteryrun", "change_lotteryrun", "view_edition"]
        )
    )
    return user


@pytest.fixture
def office(client, office_user):  # type: ignore[no-untyped-def]
    client.force_login(office_user)
    return client


def test_staff_freeze_enter_randomness_preview_and_draw_from_the_console(office, closed_edition):
    ApplicationFactory.create_batch(3, edition=closed_edition)
    assert office.get(console(closed_edition)).status_code == 200
    assert office.post(step("freeze", closed_edition)).url == console(closed_edition)
    run = LotteryRun.objects.get()
    page = office.get(console(closed_edition)).content.decode()
    assert run.roll_hash in page and run.commitment in page
    office.post(step("randomness", closed_edition), {"public_randomness": " 42 "})
    office.post(step("dry_run", closed_edition))
    preview = office.get(console(closed_edition))
    assert preview.context["dry_run"]["entries"] == 3
    assert LotteryRun.objects.get().state == "frozen"
    office.post(step("draw", closed_edition))
    run.refresh_from_db()
    assert run.state == "drawn" and run.public_randomness == "42" and run.drawn_by == "sato.office"
    page = office.get(console(closed_edition))
    assert len(page.context["fairness"]) == 3 and page.context["page"].paginator.count == 3
    download = office.get(reverse("office:lottery_audit", args=[closed_edition.code]))
    assert download.json()["roll_hash"] == run.roll_hash


def test_the_audit_log_names_the_staff_member_behind_the_freeze_the_randomness_and_the_draw(
    office, office_user, closed_edition
):
    ApplicationFactory.create_batch(2, edition=closed_edition)
    office.post(step("freeze", closed_edition))
    office.post(step("randomness", closed_edition), {"public_randomness": "beacon 7"})
    office.post(step("draw", closed_edition))
    events = AuditEvent.objects.filter(edition=closed_edition, action__startswith="lottery.")
    by_action = {e.action: e for e in events}
    assert set(by_action) == {"lottery.frozen", "lottery.randomness_entered", "lottery.drawn"}
    for event in by_action.values():
        assert event.actor == office_user and event.actor_label == "sato.office"
    run = LotteryRun.objects.get()
    assert run.frozen_by == run.drawn_by == "sato.office"
    # The log names them where the office reads it: filtered by staff member in the admin.
    admin = get_user_model().objects.create_superuser("admin", password="x")
    office.force_login(admin)
    listed = office.get(
        reverse("admin:registration_auditevent_changelist"), {"actor__id__exact": office_user.pk}
    )
    assert {e.action for e in listed.context["cl"].result_list} >= set(by_action)


def test_the_steps_take_only_a_post(office, closed_edition):
    ApplicationFactory(edition=closed_edition)
    for name in ("freeze", "randomness", "dry_run", "draw"):
        assert office.get(step(name, closed_edition)).status_code == 405
    assert not LotteryRun.objects.exists()


def test_staff_without_the_lottery_permission_cannot_take_a_step(client, closed_edition):
    user = get_user_model().objects.create(username="reception", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_lotteryrun"))
    client.force_login(user)
    ApplicationFactory(edition=closed_edition)
    assert client.get(console(closed_edition)).status_code == 200
    for name in ("freeze", "randomness", "dry_run", "draw"):
        assert client.post(step(name, closed_edition)).status_code == 403
    assert not LotteryRun.objects.exists()


def test_the_console_refuses_a_freeze_with_open_flags_unless_confirmed(office, closed_edition):
    a, b = ApplicationFactory.create_batch(2, edition=closed_edition)
    DuplicateFlag.objects.create(application=a, other=b, reason="name")
    office.post(step("freeze", closed_edition))
    assert not LotteryRun.objects.exists()
    office.post(step("freeze", closed_edition), {"confirm_duplicates": "on"})
    assert LotteryRun.objects.exists()
