"""Retention: personal data is shredded RETENTION_DAYS after an edition's last session; the
statistics and the lottery audit file stay (SPEC.md §4)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session as BrowserSession
from django.core.management import call_command
from django.db.models import CharField, JSONField, TextField
from django.utils import timezone

from childcare.models import Child
from lottery.models import LotteryEvent, LotteryResult, Place
from lottery.services import lottery_audit
from lottery.verify import verify
from registration import audit, retention, services, tasks
from registration.models import (
    Application,
    Attendance,
    AuditEvent,
    Booth,
    DuplicateFlag,
    Edition,
    OutboxEmail,
    Session,
)
from tests.concurrency import at_once
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

pytestmark = pytest.mark.django_db


def personalise(application: Application, tag: str, *, phone: str) -> list[str]:
    """Give an application and its children unmistakable personal data; returns those strings."""
    values = {
        "family_name": f"鈴木{tag}",
        "given_name": f"一郎{tag}",
        "family_name_kana": f"スズキ{tag}",
        "given_name_kana": f"イチロウ{tag}",
        "email": f"{tag}-parent@example.jp",
        "phone": phone,
        "needs_other": f"手すりが必要{tag}",
        "questions": f"講師への質問{tag}",
    }
    Application.objects.filter(pk=application.pk).update(
        needs_sign_language=True, needs_wheelchair_space=True, **values
    )
    strings = list(values.values())
    for child in Child.objects.filter(application=application):
        child_values = {
            "name": f"太郎{tag}{child.position}",
            "name_kana": f"タロウ{tag}{child.position}",
            "notes": f"卵アレルギー{tag}{child.position}",
        }
        Child.objects.filter(pk=child.pk).update(**child_values)
        strings += child_values.values()
    return strings


def move_sessions(edition: Edition, *, last_days_ago: int) -> None:
    """The first session 200 days ago, the last one ``last_days_ago``."""
    today = timezone.localdate()
    Session.objects.filter(edition=edition, code="tama").update(date=today - dt.timedelta(days=200))
    Session.objects.filter(edition=edition, code="center").update(
        date=today - dt.timedelta(days=last_days_ago)
    )


def everything_stored() -> str:
    """Every text and JSON value of every table."""
    dump = []
    for model in apps.get_models():
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, CharField | TextField | JSONField)
        ]
        if fields:
            for row in model._default_manager.values_list(*fields):
                dump.append(json.dumps(row, ensure_ascii=False, default=str))
    return "\n".join(dump)


def statistics(edition: Edition) -> dict[str, Any]:
    """What must survive shredding: numbers, statuses, choices, the lottery."""
    applications = Application.objects.filter(edition=edition)
    return {
        "applications": sorted(
            applications.values_list(
                "number",
                "status",
                "municipality",
                "grades",
                "adults",
                "children",
                "childcare_fallback",
                "choice_1",
                "choice_2",
                "choice_3",
                "language",
                "created_at",
                "withdrawn_at",
                "health_consent_at",
            )
        ),
        "per_status_and_municipality": Counter(applications.values_list("status", "municipality")),
        "booths_of_interest": sorted(
            applications.filter(booths_of_interest__isnull=False).values_list(
                "number", "booths_of_interest"
            )
        ),
        "results": list(LotteryResult.objects.filter(run__edition=edition).values()),
        "places": list(Place.objects.filter(run__edition=edition).values()),
        "events": list(LotteryEvent.objects.filter(run__edition=edition).values()),
        "arrivals": list(Attendance.objects.filter(application__edition=edition).values()),
        "emails": list(
            OutboxEmail.objects.filter(application__edition=edition)
            .order_by("pk")
            .values_list("kind", "status", "language", "created_at", "sent_at")
        ),
        "history": list(
            AuditEvent.objects.filter(edition=edition)
            .exclude(action="edition.shredded")
            .order_by("pk")
            .values_list("at", "actor_label", "action", "application")
        ),
    }


@pytest.fixture
def old(django_capture_on_commit_callbacks) -> tuple[Edition, list[str]]:  # type: ignore[no-untyped-def]
    """A drawn edition whose last session was RETENTION_DAYS ago, with all kinds of personal
    data: children, accessibility needs, questions, duplicate flags, sent e-mails, reasons."""
    edition = closed_edition(tama_venue=2, tama_online=1)
    first = applicant(edition, "AAAAAAAA", ["tama:venue", "tama:online"], children=1, childcare=1)
    second = applicant(edition, "BBBBBBBB", ["tama:venue"], adults=2)
    third = applicant(edition, "CCCCCCCC", ["tama:online", "center:online"])
    twin = applicant(edition, "DDDDDDDD", ["center:venue"])
    Application.objects.filter(pk=third.pk).update(municipality="setagaya", grades="m1,m3")
    personal = personalise(first, "qa1", phone="09011112222")
    personal += personalise(second, "qb2", phone="08033334444")
    personal += personalise(third, "qc3", phone="07055556666")
    personal += personalise(twin, "qd4", phone="09011112222")
    first.booths_of_interest.add(Booth.objects.filter(session__edition=edition).first())
    assert services.flag_duplicates(Application.objects.get(pk=twin.pk))
    with django_capture_on_commit_callbacks(execute=True):
        draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC"], confirm_duplicates=True)
    withdrawal_reason = "鈴木qa1さんから電話、子どもの体調不良"
    removal_reason = "鈴木qa1さんと同じ世帯（電話 09011112222）"
    with django_capture_on_commit_callbacks(execute=True):
        assert services.application_withdraw(
            application=Application.objects.get(pk=first.pk), reason=withdrawal_reason
        )
        assert services.application_remove(
            application=Application.objects.get(pk=twin.pk),
            status=Application.Status.DUPLICATE,
            actor=None,
            reason=removal_reason,
        )
    note = "鈴木qa1さんの件で抽選について問い合わせ"
    audit.log_action("edition.noted", edition=edition, reason=note)
    refused = "{'qc3-parent@example.jp': (550, b'5.1.1 unknown user qc3')}"
    OutboxEmail.objects.filter(application=third).update(status="failed", last_error=refused)
    Attendance.objects.create(application=second, heads=2, checked_in_by="reception")
    move_sessions(edition, last_days_ago=settings.RETENTION_DAYS)
    personal += [withdrawal_reason, removal_reason, note, "unknown user qc3"]
    stored = everything_stored()
    assert all(s in stored for s in personal), "the world holds every personal string"
    assert OutboxEmail.objects.filter(application=second).exclude(body_text="").exists()
    return edition, personal


@pytest.fixture
def recent() -> tuple[Edition, list[str]]:
    """An edition whose last session was one day less than RETENTION_DAYS ago."""
    edition = closed_edition()
    application = applicant(edition, "KKKKKKKK", ["center:venue"], children=1, childcare=1)
    personal = personalise(application, "keep7", phone="09077778888")
    move_sessions(edition, last_days_ago=settings.RETENTION_DAYS - 1)
    return edition, personal


def test_it_leaves_nothing_personal_in_any_table(old):  # type: ignore[no-untyped-def]
    edition, personal = old
    retention.retention_shred(actor_label="command")
    stored = everything_stored()
    assert [s for s in personal if s in stored] == []
    assert not Child.objects.filter(application__edition=edition).exists()
    assert not DuplicateFlag.objects.filter(application__edition=edition).exists()
    applications = Application.objects.filter(edition=edition)
    assert not applications.filter(needs_sign_language=True).exists()
    assert not applications.filter(needs_wheelchair_space=True).exists()
    assert sorted(applications.values_list("email", flat=True)) == sorted(
        f"shredded-{pk}@shredded.invalid" for pk in applications.values_list("pk", flat=True)
    )


def test_it_keeps_the_statistics_and_the_lottery(old):  # type: ignore[no-untyped-def]
    edition, _personal = old
    before = statistics(edition)
    audit_before = json.loads(json.dumps(lottery_audit(edition=edition)))
    assert audit_before["events"], "the audit file lists the withdrawal and its promotion"
    retention.retention_shred(actor_label="command")
    assert statistics(edition) == before
    audit_after = json.loads(json.dumps(lottery_audit(edition=edition)))
    assert audit_after == audit_before
    assert verify(audit_after) == []


def test_it_logs_the_shredding_with_its_counts(old):  # type: ignore[no-untyped-def]
    edition, _personal = old
    [report] = retention.retention_shred(actor_label="command").editions
    assert report.edition == edition.code
    assert report.last_session == timezone.localdate() - dt.timedelta(days=settings.RETENTION_DAYS)
    assert report.counts["applications"] == 4
    assert report.counts["children"] == 1
    assert report.counts["duplicate_flags"] == 2
    assert (
        report.counts["outbox_emails"]
        == OutboxEmail.objects.filter(application__edition=edition).count()
    )
    event = AuditEvent.objects.get(action="edition.shredded")
    assert (event.edition, event.actor_label) == (edition, "command")
    assert event.data == {"retention_days": settings.RETENTION_DAYS, **report.counts}
    edition.refresh_from_db()
    assert edition.shredded_at is not None


def test_a_dry_run_lists_what_would_go_and_changes_nothing(old, capsys):  # type: ignore[no-untyped-def]
    edition, _personal = old
    stored = everything_stored()
    call_command("shred_personal_data", "--dry-run")
    assert everything_stored() == stored
    assert Child.objects.filter(application__edition=edition).count() == 1
    edition.refresh_from_db()
    assert edition.shredded_at is None
    out = capsys.readouterr().out
    assert "Dry run: nothing has changed." in out
    assert f"Would shred edition {edition.code}" in out
    assert "  applications: 4\n" in out
    assert "  children: 1\n" in out
    assert "  duplicate_flags: 2\n" in out


def test_the_dry_run_counts_what_the_shredding_then_does(old):  # type: ignore[no-untyped-def]
    [planned] = retention.retention_shred(actor_label="command", dry_run=True).editions
    [done] = retention.retention_shred(actor_label="command").editions
    assert planned == done


def test_an_edition_inside_its_retention_period_is_untouched(old, recent):  # type: ignore[no-untyped-def]
    edition, personal = recent
    report = retention.retention_shred(actor_label="command")
    assert [s.edition for s in report.editions] == [old[0].code]
    stored = everything_stored()
    assert all(s in stored for s in personal)
    assert Child.objects.filter(application__edition=edition).count() == 1
    application = Application.objects.get(edition=edition)
    assert application.needs_sign_language and application.needs_wheelchair_space
    edition.refresh_from_db()
    assert edition.shredded_at is None


def test_running_twice_is_harmless(old):  # type: ignore[no-untyped-def]
    edition, _personal = old
    retention.retention_shred(actor_label="command")
    stored, shredded_at = everything_stored(), Edition.objects.get(pk=edition.pk).shredded_at
    assert retention.retention_shred(actor_label="command").editions == []
    assert everything_stored() == stored
    assert Edition.objects.get(pk=edition.pk).shredded_at == shredded_at
    assert AuditEvent.objects.filter(action="edition.shredded").count() == 1
    assert verify(json.loads(json.dumps(lottery_audit(edition=edition)))) == []


def test_the_command_shreds_and_says_so(old, capsys):  # type: ignore[no-untyped-def]
    edition, personal = old
    call_command("shred_personal_data")
    out = capsys.readouterr().out
    assert f"Shredded edition {edition.code}" in out
    assert [s for s in personal if s in everything_stored()] == []
    call_command("shred_personal_data")
    assert "No edition is due" in capsys.readouterr().out


def test_the_daily_task_shreds_as_the_system(old):  # type: ignore[no-untyped-def]
    edition, personal = old
    tasks.retention_shred.delay()
    assert [s for s in personal if s in everything_stored()] == []
    assert AuditEvent.objects.get(action="edition.shredded").actor_label == audit.SYSTEM
    schedule = settings.CELERY_BEAT_SCHEDULE.values()
    assert {"task": "registration.tasks.retention_shred", "schedule": 86400.0} in schedule


def test_an_edition_without_applications_is_marked_shredded(edition):  # type: ignore[no-untyped-def]
    move_sessions(edition, last_days_ago=settings.RETENTION_DAYS + 30)
    [report] = retention.retention_shred(actor_label="command").editions
    assert set(report.counts.values()) == {0}
    edition.refresh_from_db()
    assert edition.shredded_at is not None


def test_expired_browser_sessions_go_and_live_ones_stay(db):  # type: ignore[no-untyped-def]
    store = import_module(settings.SESSION_ENGINE).SessionStore
    live, expired = store(), store()
    for session in (live, expired):
        session["apply-draft"] = {"family_name": ["鈴木"], "email": ["qz9-parent@example.jp"]}
        session.create()
    BrowserSession.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    assert retention.retention_shred(actor_label="command", dry_run=True).expired_sessions == 1
    assert BrowserSession.objects.count() == 2
    assert retention.retention_shred(actor_label="command").expired_sessions == 1
    assert list(BrowserSession.objects.values_list("session_key", flat=True)) == [live.session_key]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_shred_an_edition_once():
    """The daily task and a staff member's command at the same moment, on PostgreSQL."""
    edition = closed_edition()
    for number in ("AAAAAAAA", "BBBBBBBB"):
        applicant(edition, number, ["tama:venue"], children=1, childcare=1)
    move_sessions(edition, last_days_ago=settings.RETENTION_DAYS)
    reports, errors = at_once(
        lambda who: retention.retention_shred(actor_label=who), ["system", "command"]
    )
    assert not errors, errors
    assert sorted(len(r.editions) for r in reports) == [0, 1]
    assert AuditEvent.objects.filter(action="edition.shredded").count() == 1
    assert not Child.objects.exists()
    assert set(Application.objects.values_list("family_name", flat=True)) == {""}
