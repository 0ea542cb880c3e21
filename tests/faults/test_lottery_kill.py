"""A worker killed in the middle of the draw or of a promotion, on PostgreSQL with real processes.

The child process stops at lottery.services._test_pause once everything is written and nothing
is committed, records what it sees inside its own transaction, and is killed there with SIGKILL.
Another connection must then see none of it, rerunning must finish the job, and running it once
more must change nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import warnings
from collections import Counter
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from celery.exceptions import AlwaysEagerIgnored
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from lottery import procedure, services
from lottery.models import LotteryEvent, LotteryResult, LotteryRun, Place
from lottery.verify import verify
from registration import services as registration_services
from registration.models import Application, AuditEvent, Edition, OutboxEmail
from seminar_site.celery import app as celery_app
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

from .procs import app_env, private_redis, stop, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

KILLED_PAUSE_SECONDS = 120  # far longer than the test: the child is always killed inside it
STARTUP_TIMEOUT = 45  # a Celery worker on a loaded 2-core machine


def snapshot(edition_id: int) -> dict[str, Any]:
    """Everything the lottery has decided about an edition, as JSON. The child computes it inside
    its own transaction, the test from another connection, so the two can be compared."""
    run = LotteryRun.objects.filter(edition_id=edition_id).values(
        "state", "seed", "public_randomness", "drawn_at", "drawn_by"
    )
    state = {
        "run": list(run),
        "results": list(
            LotteryResult.objects.filter(run__edition_id=edition_id)
            .order_by("rank")
            .values_list(
                "rank", "number", "key", "outcome", "option_id", "round", "childcare", "waitlist"
            )
        ),
        "places": list(
            Place.objects.filter(run__edition_id=edition_id)
            .order_by("application__number")
            .values_list("application__number", "option_id", "childcare", "promoted", "since")
        ),
        "events": list(
            LotteryEvent.objects.filter(run__edition_id=edition_id)
            .order_by("id")
            .values_list("id", "kind", "number", "option_id", "at")
        ),
        # Not the sending status: a worker may send them in between, which decides nothing.
        "emails": list(
            OutboxEmail.objects.filter(application__edition_id=edition_id)
            .order_by("id")
            .values_list("id", "kind", "application__number")
        ),
        "audit": list(
            AuditEvent.objects.filter(edition_id=edition_id)
            .order_by("id")
            .values_list("id", "action", "application__number")
        ),
        "applications": list(
            Application.objects.filter(edition_id=edition_id)
            .order_by("number")
            .values_list("number", "status")
        ),
    }
    return cast(dict[str, Any], json.loads(json.dumps(state, default=str)))


# Run in the child: replace the test hook with one that, once `ready(what this transaction
# sees)`, writes that view and the backend's pid to a file, and only then pauses (and is killed).
CHILD_PRELUDE = r"""
import json, os, sys
import django

django.setup()
from django.conf import settings
from django.db import connection

from lottery import services
from tests.faults.test_lottery_kill import snapshot

EDITION_ID, PAUSE, MARKER = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
settings.LOTTERY_TEST_PAUSE_SECONDS = PAUSE
original_pause = services._test_pause


def pause_when(ready):
    def report_then_pause():
        seen = snapshot(EDITION_ID)
        if not ready(seen):
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        report = {"pid": pid, "in_atomic_block": connection.in_atomic_block, "seen": seen}
        with open(MARKER + ".tmp", "w") as f:
            json.dump(report, f)
        os.replace(MARKER + ".tmp", MARKER)
        original_pause()

    services._test_pause = report_then_pause
"""

# A real Celery worker (solo pool: the draw runs in this very process) taking lottery_tick,
# the scheduled job that draws what is due.
DRAW_WORKER = (
    CHILD_PRELUDE
    + r"""
pause_when(lambda seen: seen["run"][0]["state"] == "drawn")
from seminar_site.celery import app

app.worker_main(
    ["worker", "--pool=solo", "--queues=celery", "--loglevel=INFO", "--without-gossip",
     "--without-mingle", "--without-heartbeat", f"--hostname=draw-{os.getpid()}@%h"]
)
"""
)

# A parent's withdrawal, as the "withdraw" view calls it.
WITHDRAWAL = (
    CHILD_PRELUDE
    + r"""
pause_when(lambda seen: any(kind == "promoted" for _, kind, *_ in seen["events"]))
from registration.models import Application
from registration.services import application_withdraw

print(application_withdraw(application=Application.objects.get(number=sys.argv[4])))
"""
)


def start_child(
    tmp_path: Path, name: str, script: str, args: list[str], **env: str
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    marker, log = tmp_path / f"{name}.json", tmp_path / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", script, *args[:2], str(marker), *args[2:]],
            env=app_env(tmp_path, **env),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process, marker, log


def paused(process: subprocess.Popen[bytes], marker: Path, log: Path) -> dict[str, Any]:
    """Wait until the child reports that it has written everything and is pausing."""

    def report() -> dict[str, Any] | None:
        if marker.exists():
            return cast(dict[str, Any], json.loads(marker.read_text()))
        if process.poll() is not None:
            return {"exited": process.returncode}
        return None

    seen = wait_for(report, timeout=STARTUP_TIMEOUT, what=f"the child to pause ({log})")
    assert "exited" not in seen, f"the child ended before pausing:\n{log.read_text()[-3000:]}"
    return seen


def backend(pid: int) -> tuple[str, bool] | None:
    """The state of a backend and whether it holds a transaction id (it has written)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", [pid]
        )
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def kill_inside_transaction(process: subprocess.Popen[bytes], pid: int) -> None:
    """SIGKILL the child while PostgreSQL shows its writes pending, then wait until the server
    has rolled them back and ended that backend (so no lock of it is left)."""
    wait_for(
        lambda: backend(pid) == ("idle in transaction", True),
        timeout=10,
        what="the child's backend to be idle in its writing transaction",
    )
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=10) == -signal.SIGKILL
    wait_for(lambda: backend(pid) is None, timeout=30, what="PostgreSQL to end the backend")


def publish_tick(broker_url: str) -> None:
    """What beat does every minute: publish lottery_tick (the test process is eager-only)."""
    with (
        warnings.catch_warnings(),
        celery_app.connection_for_write(broker_url) as broker,
    ):
        warnings.simplefilter("ignore", AlwaysEagerIgnored)
        celery_app.send_task("lottery.tasks.lottery_tick", connection=broker)


def frozen_edition_due_for_draw() -> Edition:
    """30 applicants for 22 venue heads and 4 online places, frozen, public randomness entered,
    draw time passed: the scheduled job will draw it."""
    edition = closed_edition(tama_venue=12, tama_online=4, center_venue=10)
    preferences = [
        ["tama:venue", "tama:online"],
        ["center:venue", "tama:venue"],
        ["tama:online"],
        ["tama:venue", "center:venue", "tama:online"],
    ]
    for i in range(30):
        with_child = i % 3 == 0
        applicant(
            edition,
            f"K{i:02d}QMXD7",
            preferences[i % 4],
            adults=1 + i % 2,
            children=int(with_child),
            childcare=int(with_child),
        )
    run = services.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    services.lottery_set_randomness(
        run=run, randomness="beacon round 4242", actor=None, actor_label="staff"
    )
    Edition.objects.filter(pk=edition.pk).update(draw_at=timezone.now())
    return edition


def test_a_draw_killed_inside_its_transaction_leaves_nothing_and_the_next_tick_draws_once(
    tmp_path: Path,
) -> None:
    edition = frozen_edition_due_for_draw()
    before = snapshot(edition.pk)
    assert before["run"][0]["state"] == "frozen"

    with private_redis(tmp_path) as redis:
        worker, marker, log = start_child(
            tmp_path,
            "killed-worker",
            DRAW_WORKER,
            [str(edition.pk), str(KILLED_PAUSE_SECONDS)],
            REDIS_URL=redis["url"],
        )
        try:
            publish_tick(redis["url"])
            report = paused(worker, marker, log)
            kill_inside_transaction(worker, report["pid"])
        finally:
            stop(worker, signal.SIGKILL)

    # Inside its transaction the killed worker had drawn everything…
    seen = report["seen"]
    assert report["in_atomic_block"]
    assert seen["run"][0]["state"] == "drawn" and len(seen["results"]) == 30
    assert Counter(kind for _, kind, _ in seen["emails"]) == {"result": 30}
    outcomes = Counter(outcome for _, _, _, outcome, *_ in seen["results"])
    assert outcomes["won"] and outcomes["waitlisted"], outcomes
    # …and none of it is visible: the run is still frozen (the claim was rolled back too).
    assert snapshot(edition.pk) == before

    # The next tick finishes the job (lottery_scheduled is the body of lottery_tick; run here,
    # since a second worker would only add its start-up time).
    assert services.lottery_scheduled() == [f"drawn {edition.code}"]

    drawn = snapshot(edition.pk)
    # The same decisions as the killed attempt had computed, exactly as the procedure gives them.
    assert drawn["results"] == seen["results"]
    assert [p[:4] for p in drawn["places"]] == [p[:4] for p in seen["places"]]
    run = LotteryRun.objects.get(edition=edition)
    roll = cast(procedure.Roll, json.loads(run.roll_json))
    seed = procedure.seed(run.roll_hash, run.secret, "beacon round 4242")
    audit_path = tmp_path / "audit.json"
    call_command("lottery", "audit", edition.code, output=str(audit_path), stderr=StringIO())
    audit = json.loads(audit_path.read_text(encoding="utf-8"))
    assert verify(audit) == []
    assert audit["results"] == json.loads(json.dumps(procedure.allocate(roll, seed)))
    assert run.seed == seed.hex()
    # One result e-mail per application, one "drawn" in the audit log, no event yet.
    assert Counter(number for _, kind, number in drawn["emails"] if kind == "result") == {
        number: 1 for number, _ in drawn["applications"]
    }
    assert [action for _, action, _ in drawn["audit"]].count("lottery.drawn") == 1
    assert drawn["events"] == []

    # Drawing again, by the console with other randomness or by the scheduled job, does nothing.
    again = services.lottery_draw(
        edition=edition, actor=None, actor_label="staff", randomness="another text"
    )
    assert not again.drawn
    assert services.lottery_scheduled() == []
    assert snapshot(edition.pk) == drawn


HOLDERS = ["H1HHHHHH", "H2HHHHHH", "H3HHHHHH"]
WAITING = ["W1WWWWWW", "W2WWWWWW"]


def test_a_promotion_killed_inside_its_transaction_leaves_nothing_and_a_retry_promotes_once(
    tmp_path: Path,
) -> None:
    edition = closed_edition(tama_venue=3)
    for number in HOLDERS + WAITING:
        applicant(edition, number, ["tama:venue"])
    draw_in_order(edition, HOLDERS, WAITING)
    first_waiting = LotteryResult.objects.filter(number__in=WAITING).order_by("rank")[0].number
    before = snapshot(edition.pk)
    assert len(before["places"]) == 3

    process, marker, log = start_child(
        tmp_path, "withdrawal", WITHDRAWAL, [str(edition.pk), str(KILLED_PAUSE_SECONDS), "H1HHHHHH"]
    )
    try:
        report = paused(process, marker, log)
        kill_inside_transaction(process, report["pid"])
    finally:
        stop(process, signal.SIGKILL)

    # Inside its transaction the child had withdrawn H1 and promoted the first on the list…
    seen = report["seen"]
    assert report["in_atomic_block"]
    assert ["H1HHHHHH", "withdrawn"] in seen["applications"]
    assert [(kind, number) for _, kind, number, _, _ in seen["events"]] == [
        ("withdrawn", "H1HHHHHH"),
        ("promoted", first_waiting),
    ]
    assert [kind for _, kind, number in seen["emails"] if number == first_waiting] == [
        "result",
        "promoted",
    ]
    # …and none of it is visible: H1 still holds its place, the waiting list still waits.
    assert snapshot(edition.pk) == before
    assert Place.objects.filter(application__number="H1HHHHHH").exists()
    assert not Place.objects.filter(application__number__in=WAITING).exists()

    # The parent tries again: one withdrawal, one promotion, one e-mail each.
    h1 = Application.objects.get(number="H1HHHHHH")
    assert registration_services.application_withdraw(application=h1) is True
    after = snapshot(edition.pk)
    assert [(kind, number) for _, kind, number, _, _ in after["events"]] == [
        ("withdrawn", "H1HHHHHH"),
        ("promoted", first_waiting),
    ]
    assert [p[:4] for p in after["places"]] == [p[:4] for p in seen["places"]]
    assert Place.objects.get(application__number=first_waiting).promoted
    new_emails = Counter((kind, number) for _, kind, number in after["emails"]) - Counter(
        (kind, number) for _, kind, number in before["emails"]
    )
    assert new_emails == {("promoted", first_waiting): 1, ("withdrawn", "H1HHHHHH"): 1}
    new_actions = [action for _, action, _ in after["audit"][len(before["audit"]) :]]
    assert sorted(new_actions) == ["application.withdrawn", "lottery.promoted"]

    # And once more (a double click, a retried request): refused, nothing changes.
    assert registration_services.application_withdraw(application=h1) is False
    assert snapshot(edition.pk) == after
