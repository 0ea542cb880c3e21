"""After the draw: withdrawals and automatic promotion (LOTTERY.md §5) on the database."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core import mail
from django.utils import timezone, translation

from childcare.models import ChildcareBand
from lottery import procedure
from lottery import services as lottery
from lottery.models import LotteryEvent
from lottery.services import lottery_audit
from lottery.verify import verify
from registration import services
from registration.models import OutboxEmail
from registration.outbox.render import render

from .drawn import applicant, closed_edition, draw_in_order, places

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():  # type: ignore[no-untyped-def]
    with translation.override("en"):
        yield


def promoted_emails() -> list[str]:
    return sorted(
        OutboxEmail.objects.filter(kind="promoted").values_list("application__number", flat=True)
    )


def test_a_larger_party_is_skipped_for_a_smaller_one_that_fits(django_capture_on_commit_callbacks):
    edition = closed_edition(tama_venue=3)
    a = applicant(edition, "AAAAAAAA", ["tama:venue"], adults=2)
    d = applicant(edition, "DDDDDDDD", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"], adults=2, children=1)
    applicant(edition, "CCCCCCCC", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "DDDDDDDD", "BBBBBBBB", "CCCCCCCC"])
    assert set(places(edition)) == {a.number, d.number}
    with django_capture_on_commit_callbacks(execute=True):
        assert services.application_withdraw(application=d)
    assert set(places(edition)) == {a.number, "CCCCCCCC"}  # B (3 people) does not fit in 1
    assert promoted_emails() == ["CCCCCCCC"]
    [promotion] = [m for m in mail.outbox if "CCCCCCCC" in m.subject]
    assert OutboxEmail.objects.get(kind="promoted").subject == promotion.subject


def test_childcare_freed_goes_first_to_the_childcare_waiting_list():
    edition = closed_edition(tama_venue=20)
    ChildcareBand.objects.filter(session__edition=edition, code="3-5").update(slots=1)
    first = applicant(edition, "AAAAAAAA", ["tama:venue"], children=1, childcare=1)
    second = applicant(edition, "BBBBBBBB", ["tama:venue"], children=1, childcare=1)
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    assert places(edition) == {
        first.number: ("tama:venue", "granted"),
        second.number: ("tama:venue", "waitlisted"),
    }
    services.application_withdraw(application=first)
    assert places(edition) == {second.number: ("tama:venue", "granted")}
    assert LotteryEvent.objects.filter(kind="childcare_granted", number=second.number).exists()
    # The parent already had the seat: the e-mail says childcare, not 繰り上げ当選.
    assert promoted_emails() == []
    [email] = OutboxEmail.objects.filter(kind="childcare_granted")
    assert email.application == second
    subject, text, _html = render(email)  # in the parent's language, Japanese
    assert "託児のご用意ができました" in subject and "繰り上げ" not in subject + text
    email.language = "en"
    subject, text, _html = render(email)
    assert "Childcare is now booked" in subject and "waiting list" not in subject
    assert "childcare is now booked for your children" in text


def test_a_promotion_cascades_from_an_online_place_to_the_venue():
    edition = closed_edition(tama_venue=1, tama_online=1)
    venue = applicant(edition, "VVVVVVVV", ["tama:venue"])
    applicant(edition, "XXXXXXXX", ["tama:venue", "tama:online"])
    applicant(edition, "WWWWWWWW", ["tama:venue", "tama:online"])
    draw_in_order(edition, ["VVVVVVVV", "XXXXXXXX", "WWWWWWWW"])
    assert places(edition) == {
        "VVVVVVVV": ("tama:venue", "none"),
        "XXXXXXXX": ("tama:online", "none"),
    }
    services.application_withdraw(application=venue)
    assert places(edition) == {
        "XXXXXXXX": ("tama:venue", "none"),
        "WWWWWWWW": ("tama:online", "none"),
    }
    kinds = list(LotteryEvent.objects.values_list("kind", "number"))
    assert ("released", "XXXXXXXX") in kinds and ("promoted", "WWWWWWWW") in kinds
    assert promoted_emails() == ["WWWWWWWW", "XXXXXXXX"]


def test_nothing_is_promoted_after_the_sessions_promotion_deadline():
    edition = closed_edition(tama_venue=1)
    holder = applicant(edition, "AAAAAAAA", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    edition.sessions.filter(code="tama").update(
        promotion_deadline=timezone.now() - dt.timedelta(minutes=1)
    )
    services.application_withdraw(application=holder)
    assert places(edition) == {}
    assert promoted_emails() == []


def test_a_duplicate_found_after_the_draw_is_removed_like_a_withdrawal():
    edition = closed_edition(tama_venue=1)
    twin = applicant(edition, "AAAAAAAA", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    assert services.application_remove(
        application=twin, status="duplicate", actor=None, reason="same family, two addresses"
    )
    assert places(edition) == {"BBBBBBBB": ("tama:venue", "none")}
    assert LotteryEvent.objects.filter(kind="removed", number="AAAAAAAA").exists()


def test_an_application_withdrawn_before_the_draw_gives_its_place_back_at_once():
    edition = closed_edition(tama_venue=1)
    early = applicant(edition, "AAAAAAAA", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"])
    run = lottery.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    services.application_withdraw(application=early)  # frozen in the roll already
    import json as _json

    entries = _json.loads(run.roll_json)["entries"]
    randomness = next(
        str(i)
        for i in range(5000)
        if procedure.draw_order(entries, procedure.seed(run.roll_hash, run.secret, str(i)))[0][0][
            "number"
        ]
        == "AAAAAAAA"
    )
    lottery.lottery_draw(edition=edition, actor=None, actor_label="staff", randomness=randomness)
    assert places(edition) == {"BBBBBBBB": ("tama:venue", "none")}
    assert not OutboxEmail.objects.filter(kind="result", application=early).exists()


def test_the_audit_file_lists_later_events_and_still_verifies():
    edition = closed_edition(tama_venue=1)
    holder = applicant(edition, "AAAAAAAA", ["tama:venue"])
    applicant(edition, "BBBBBBBB", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB"])
    services.application_withdraw(application=holder)
    audit = json.loads(json.dumps(lottery_audit(edition=edition)))
    assert [(e["kind"], e["number"], e["option"]) for e in audit["events"]] == [
        ("withdrawn", "AAAAAAAA", "tama:venue"),
        ("promoted", "BBBBBBBB", "tama:venue"),
    ]
    assert audit["results"][0]["outcome"] == "won"  # the draw itself is unchanged
    assert verify(audit) == []


def test_withdrawal_is_refused_once_the_session_has_started():
    edition = closed_edition(tama_venue=1)
    holder = applicant(edition, "AAAAAAAA", ["tama:venue"])
    draw_in_order(edition, ["AAAAAAAA"])
    session = edition.sessions.get(code="tama")
    session.date = timezone.localdate()
    session.starts_at = dt.time(0, 0)
    session.save()
    holder.refresh_from_db()
    with pytest.raises(services.NotChangeable):
        services.application_withdraw(application=holder)
