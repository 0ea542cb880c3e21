"""Freeze and draw on the database: LOTTERY.md §2–4 and §6–7, as staff and parents see them."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import translation

from childcare.models import Child
from lottery import procedure, services
from lottery.models import LotteryResult, LotteryRun
from lottery.verify import verify
from registration.models import Application, DuplicateFlag, OutboxEmail
from registration.outbox.send import outbox_drain
from tests.factories import ApplicationFactory, option
from tests.lottery import drawn

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    """Staff messages are matched in English; the site's default language is Japanese."""
    with translation.override("en"):
        yield


@pytest.fixture
def closed_edition(db):  # type: ignore[no-untyped-def]
    """Registration closed an hour ago; the draw is due tomorrow."""
    return drawn.closed_edition()


def freeze(edition, **kwargs):  # type: ignore[no-untyped-def]
    return services.lottery_freeze(edition=edition, actor=None, actor_label="staff", **kwargs)


def draw(edition, randomness="beacon 1", **kwargs):  # type: ignore[no-untyped-def]
    return services.lottery_draw(
        edition=edition, actor=None, actor_label="staff", randomness=randomness, **kwargs
    )


def test_the_roll_is_refused_while_registration_is_open(edition):
    with pytest.raises(services.LotteryRefused, match="still open"):
        freeze(edition)
    assert not LotteryRun.objects.exists()


def test_unresolved_duplicate_flags_block_the_freeze_unless_staff_confirm(closed_edition):
    a, b = ApplicationFactory.create_batch(2, edition=closed_edition)
    DuplicateFlag.objects.create(application=a, other=b, reason="phone")
    with pytest.raises(services.LotteryRefused, match="duplicate"):
        freeze(closed_edition)
    run = freeze(closed_edition, confirm_duplicates=True)
    assert run.entry_count == 2


def test_a_resolved_flag_does_not_block_the_freeze(closed_edition):
    a, b = ApplicationFactory.create_batch(2, edition=closed_edition)
    DuplicateFlag.objects.create(application=a, other=b, reason="phone", resolution="kept")
    assert freeze(closed_edition).entry_count == 2


def test_the_roll_lists_active_applications_with_heads_childcare_bands_and_fallback(closed_edition):
    tama = closed_edition.sessions.get(code="tama")
    family = ApplicationFactory(
        edition=closed_edition,
        adults=2,
        children=2,
        choice_2=option(closed_edition, "center:venue"),
        choice_3=option(closed_edition, "tama:online"),
        childcare_fallback="skip",
    )
    Child.objects.create(
        application=family,
        position=1,
        name="a",
        name_kana="ア",
        date_of_birth=tama.date - dt.timedelta(days=365 * 4),
    )
    Child.objects.create(
        application=family,
        position=2,
        name="b",
        name_kana="イ",
        date_of_birth=tama.date - dt.timedelta(days=365 + 100),
    )
    single = ApplicationFactory(
        edition=closed_edition, choice_1=option(closed_edition, "center:online")
    )
    ApplicationFactory(edition=closed_edition, status="withdrawn")
    ApplicationFactory(edition=closed_edition, status="duplicate")
    run = freeze(closed_edition)
    roll = json.loads(run.roll_json)
    assert run.roll_hash == procedure.roll_hash(roll)
    assert run.commitment == procedure.commitment(run.secret)
    assert [e["number"] for e in roll["entries"]] == sorted([family.number, single.number])
    entry = next(e for e in roll["entries"] if e["number"] == family.number)
    assert entry == {
        "number": family.number,
        "choices": ["tama:venue", "center:venue", "tama:online"],
        "heads": 4,
        "childcare": {"tama": {"0-2": 1, "3-5": 1}, "center": {"0-2": 1, "3-5": 1}},
        "fallback": "skip",
        "weight": 1,
    }
    assert roll["options"]["tama:venue"] == {"session": "tama", "unit": "heads", "capacity": 150}
    assert roll["options"]["center:online"]["unit"] == "applications"
    assert roll["childcare"] == {"center": {"0-2": 6, "3-5": 10}, "tama": {"0-2": 6, "3-5": 10}}


def test_the_roll_cannot_be_changed_after_the_freeze(closed_edition):
    application = ApplicationFactory(edition=closed_edition)
    run = freeze(closed_edition)
    Application.objects.filter(pk=application.pk).update(adults=2, status="withdrawn")
    ApplicationFactory(edition=closed_edition)
    run.refresh_from_db()
    assert procedure.roll_hash(json.loads(run.roll_json)) == run.roll_hash
    assert json.loads(run.roll_json)["entries"][0]["heads"] == 1
    with pytest.raises(services.LotteryRefused, match="already frozen"):
        freeze(closed_edition)


def test_the_draw_saves_what_the_procedure_computes_and_emails_every_parent(
    closed_edition, django_capture_on_commit_callbacks
):
    ApplicationFactory.create_batch(5, edition=closed_edition)
    run = freeze(closed_edition)
    with django_capture_on_commit_callbacks(execute=True):
        outcome = draw(closed_edition)
    assert outcome.drawn and outcome.counts["won"] == 5
    run.refresh_from_db()
    assert run.state == "drawn" and run.public_randomness == "beacon 1"
    roll = json.loads(run.roll_json)
    seed = procedure.seed(run.roll_hash, run.secret, "beacon 1")
    assert run.seed == seed.hex()
    expected = {r["number"]: r for r in procedure.allocate(roll, seed)}
    for saved in LotteryResult.objects.select_related("option__session"):
        assert (saved.rank, saved.key, saved.outcome, saved.option.code) == (
            expected[saved.number]["rank"],
            expected[saved.number]["key"],
            "won",
            expected[saved.number]["option"],
        )
    assert OutboxEmail.objects.filter(kind="result", status="sent").count() == 5
    assert len(mail.outbox) == 5
    assert all("tama" in m.body.lower() or "多摩" in m.body for m in mail.outbox)


def test_a_second_draw_changes_nothing_and_says_so(closed_edition):
    ApplicationFactory.create_batch(3, edition=closed_edition)
    freeze(closed_edition)
    draw(closed_edition)
    before = list(LotteryResult.objects.values_list("number", "rank", "outcome"))
    again = draw(closed_edition, randomness="something else")
    assert not again.drawn and "already been drawn" in again.message
    assert list(LotteryResult.objects.values_list("number", "rank", "outcome")) == before
    assert LotteryRun.objects.get().public_randomness == "beacon 1"
    assert OutboxEmail.objects.filter(kind="result").count() == 3


def test_a_dry_run_shows_counts_and_saves_nothing(closed_edition):
    ApplicationFactory.create_batch(3, edition=closed_edition)
    freeze(closed_edition)
    outcome = draw(closed_edition, dry_run=True)
    assert outcome.counts["entries"] == 3 and not outcome.drawn
    assert LotteryRun.objects.get().state == "frozen"
    assert not LotteryResult.objects.exists() and not OutboxEmail.objects.exists()


def test_the_draw_needs_a_frozen_roll(closed_edition):
    with pytest.raises(services.LotteryRefused, match="Freeze"):
        draw(closed_edition)


def test_more_demand_than_seats_makes_a_waitlist_with_numbers(closed_edition):
    venue = option(closed_edition, "tama:venue")
    venue.capacity = 4
    venue.save()
    ApplicationFactory.create_batch(5, edition=closed_edition, adults=2)
    freeze(closed_edition)
    draw(closed_edition)
    assert LotteryResult.objects.filter(outcome="won").count() == 2
    waiting = LotteryResult.objects.filter(outcome="waitlisted").order_by("rank")
    assert [r.waitlist for r in waiting] == [{"tama:venue": n} for n in (1, 2, 3)]


def test_the_audit_file_verifies_and_a_tampered_one_is_rejected(closed_edition, tmp_path):
    ApplicationFactory.create_batch(
        4, edition=closed_edition, choice_2=option(closed_edition, "center:online")
    )
    freeze(closed_edition)
    draw(closed_edition)
    path = tmp_path / "audit.json"
    call_command("lottery", "audit", closed_edition.code, "--output", str(path))
    audit = json.loads(path.read_text())
    assert verify(audit) == []
    assert "family_name" not in path.read_text() and "@" not in path.read_text()
    out = io.StringIO()
    call_command("lottery", "verify", str(path), stdout=out)
    assert "OK" in out.getvalue()
    audit["results"][0]["outcome"] = "waitlisted"
    path.write_text(json.dumps(audit))
    with pytest.raises(SystemExit) as exit_info:
        call_command("lottery", "verify", str(path), stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_the_commands_freeze_and_draw_once(closed_edition):
    ApplicationFactory.create_batch(2, edition=closed_edition)
    out = io.StringIO()
    call_command("lottery", "freeze", closed_edition.code, stdout=out)
    run = LotteryRun.objects.get()
    assert run.roll_hash in out.getvalue() and run.commitment in out.getvalue()
    out = io.StringIO()
    call_command("lottery", "draw", closed_edition.code, "--dry-run", stdout=out)
    assert "entries: 2" in out.getvalue()
    call_command("lottery", "draw", closed_edition.code, "--randomness", "r", stdout=io.StringIO())
    out = io.StringIO()
    call_command("lottery", "draw", closed_edition.code, stdout=out)
    assert "already been drawn" in out.getvalue()


def test_the_scheduled_job_freezes_then_draws_when_their_times_come(closed_edition):
    ApplicationFactory.create_batch(2, edition=closed_edition)
    assert services.lottery_scheduled() == [f"frozen {closed_edition.code}"]
    assert services.lottery_scheduled() == []  # not yet time to draw
    run = LotteryRun.objects.get()
    services.lottery_set_randomness(run=run, randomness=" 12345 ", actor=None, actor_label="staff")
    later = closed_edition.draw_at + dt.timedelta(minutes=1)
    assert services.lottery_scheduled(now=later) == [f"drawn {closed_edition.code}"]
    assert services.lottery_scheduled(now=later) == []
    run.refresh_from_db()
    assert run.state == "drawn" and run.public_randomness == "12345"


def test_the_randomness_cannot_change_after_the_draw(closed_edition):
    ApplicationFactory(edition=closed_edition)
    run = freeze(closed_edition)
    draw(closed_edition)
    with pytest.raises(services.LotteryRefused):
        services.lottery_set_randomness(run=run, randomness="new", actor=None, actor_label="staff")


def test_generate_applications_is_reproducible(closed_edition):
    call_command(
        "generate_applications",
        closed_edition.code,
        "--count",
        "30",
        "--random-seed",
        "7",
        stdout=io.StringIO(),
    )
    first = sorted(Application.objects.values_list("number", "adults", "children"))
    Child.objects.all().delete()
    Application.objects.all().delete()
    call_command(
        "generate_applications",
        closed_edition.code,
        "--count",
        "30",
        "--random-seed",
        "7",
        stdout=io.StringIO(),
    )
    assert sorted(Application.objects.values_list("number", "adults", "children")) == first
    run = freeze(closed_edition)
    assert run.entry_count == 30


def test_result_emails_cost_two_queries_each_however_many_are_sent(closed_edition):
    """A claim and a "sent" mark per e-mail; what the result says is loaded once per batch
    (bench/mail.py measures the speed this buys at 10,000)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ApplicationFactory.create_batch(12, edition=closed_edition)
    freeze(closed_edition)
    draw(closed_edition)  # outside a captured on-commit: the e-mails stay queued
    queued = list(OutboxEmail.objects.filter(kind="result").order_by("pk"))
    OutboxEmail.objects.filter(pk__in=[e.pk for e in queued[3:]]).update(status="failed")
    with CaptureQueriesContext(connection) as three:
        assert outbox_drain() == 3
    OutboxEmail.objects.filter(pk__in=[e.pk for e in queued[3:]]).update(status="queued")
    with CaptureQueriesContext(connection) as nine:
        assert outbox_drain() == 9
    assert len(nine) - len(three) == 2 * (9 - 3)
    assert all(m.to[0] in {e.to for e in queued} for m in mail.outbox)
    assert len(mail.outbox) == 12
