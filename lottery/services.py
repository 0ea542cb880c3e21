"""The lottery's workflows on the database side: load rows, lock, save, notify.

The procedure itself (hashes, keys, allocation, waitlists) lives in lottery/procedure.py and
imports nothing from Django, so that the draw, the promotions and the verifier share one text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Literal, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from childcare.models import Child, ChildcareBand, band_for
from registration import audit
from registration.models import Application, DuplicateFlag, Edition, Option, OutboxEmail
from registration.outbox.queue import outbox_enqueue, outbox_enqueue_query

from . import procedure
from .models import LotteryEvent, LotteryResult, LotteryRun, Place

log = logging.getLogger(__name__)


class LotteryRefused(Exception):
    """A step the lottery cannot take now; the message says why, for staff."""


def build_roll(edition: Edition) -> procedure.Roll:
    """LOTTERY.md §2: every active application, with heads, childcare per band and fallback."""
    options = {
        o.pk: o
        for o in Option.objects.filter(session__edition=edition)
        .select_related("session")
        .order_by("session__code", "kind")
    }
    bands: dict[int, list[ChildcareBand]] = defaultdict(list)
    for band in ChildcareBand.objects.filter(session__edition=edition).select_related("session"):
        bands[band.session_id].append(band)
    applications = list(
        Application.objects.active()
        .filter(edition=edition)
        .values_list(
            "pk",
            "number",
            "choice_1",
            "choice_2",
            "choice_3",
            "adults",
            "children",
            "childcare_fallback",
        )
        .order_by("number")
    )
    births: dict[int, list[dt.date]] = defaultdict(list)
    for application_id, born in Child.objects.filter(
        application__edition=edition, application__status=Application.Status.ACTIVE
    ).values_list("application_id", "date_of_birth"):
        births[application_id].append(born)

    entries: list[procedure.Entry] = []
    for pk, number, c1, c2, c3, adults, children, fallback in applications:
        chosen = [options[c] for c in (c1, c2, c3) if c is not None]
        childcare: dict[str, dict[str, int]] = {}
        for option in chosen:
            if option.is_venue and births.get(pk):
                counts: Counter[str] = Counter()
                for born in births[pk]:
                    # The form refuses other ages; should a band be edited later, such a
                    # child stays with the parents in the hall.
                    fitting = band_for(bands[option.session_id], born)
                    if fitting is not None:
                        counts[fitting.code] += 1
                if counts:
                    childcare[option.session.code] = dict(sorted(counts.items()))
        entries.append(
            {
                "number": number,
                "choices": [o.code for o in chosen],
                "heads": adults + children,
                "childcare": childcare,
                "fallback": "skip" if fallback == "skip" else "hall",
                "weight": 1,
            }
        )
    return {
        "version": procedure.VERSION,
        "edition": edition.code,
        "options": {
            o.code: {
                "session": o.session.code,
                "unit": "heads" if o.is_venue else "applications",
                "capacity": o.capacity,
            }
            for o in options.values()
        },
        "childcare": {
            session.code: {b.code: b.slots for b in bands[session.pk]}
            for session in edition.sessions.order_by("code")
        },
        "entries": entries,
    }


def unresolved_duplicates(edition: Edition) -> int:
    """How many applications of the edition have a duplicate flag still to review."""
    return DuplicateFlag.objects.open(edition).values("application").distinct().count()


def lottery_freeze(
    *,
    edition: Edition,
    actor: User | None,
    actor_label: str = audit.SYSTEM,
    confirm_duplicates: bool = False,
    now: dt.datetime | None = None,
) -> LotteryRun:
    """Freeze the entry roll (LOTTERY.md §2). Steps:

    1. refuse while registration is open, or while duplicate flags are unresolved (unless staff
       confirm that the remaining flags are not duplicates);
    2. write the roll as canonical JSON with its hash, draw the secret and its commitment;
    3. the edition's one LotteryRun row makes a second freeze impossible (unique constraint).
    """
    now = now or timezone.now()
    if edition.registration_is_open(now) or now < edition.registration_closes_at:
        raise LotteryRefused(
            _("Registration is still open: the roll can be frozen only after it closes.")
        )
    if LotteryRun.objects.filter(edition=edition).exists():
        raise LotteryRefused(_("The roll of this edition is already frozen."))
    flagged = unresolved_duplicates(edition)
    if flagged and not confirm_duplicates:
        raise LotteryRefused(
            ngettext(
                "%(n)d application has an unresolved duplicate flag. Review it first, or "
                "confirm that the roll may be frozen anyway.",
                "%(n)d applications have unresolved duplicate flags. Review them first, or "
                "confirm that the roll may be frozen anyway.",
                flagged,
            )
            % {"n": flagged}
        )
    roll = build_roll(edition)
    secret = procedure.new_secret()
    try:
        with transaction.atomic():
            run = LotteryRun.objects.create(
                edition=edition,
                roll_json=procedure.canonical_json(roll).decode("utf-8"),
                roll_hash=procedure.roll_hash(roll),
                secret=secret,
                commitment=procedure.commitment(secret),
                entry_count=len(roll["entries"]),
                frozen_at=now,
                frozen_by=audit.actor_name(actor, actor_label),
            )
            audit.log_action(
                "lottery.frozen",
                actor=actor,
                actor_label=actor_label,
                edition=edition,
                data={
                    "roll_hash": run.roll_hash,
                    "commitment": run.commitment,
                    "entries": run.entry_count,
                    "unresolved_duplicates": flagged,
                },
            )
    except IntegrityError as e:
        raise LotteryRefused(_("The roll of this edition is already frozen.")) from e
    return run


def lottery_set_randomness(
    *, run: LotteryRun, randomness: str, actor: User | None, actor_label: str = audit.SYSTEM
) -> None:
    randomness = randomness.strip()
    if not LotteryRun.objects.filter(pk=run.pk, state=LotteryRun.State.FROZEN).update(
        public_randomness=randomness
    ):
        raise LotteryRefused(_("The draw has taken place: the randomness can no longer change."))
    audit.log_action(
        "lottery.randomness_entered",
        actor=actor,
        actor_label=actor_label,
        edition=run.edition,
        data={"public_randomness": randomness},
    )


@dataclass
class DrawOutcome:
    drawn: bool
    message: str
    counts: dict[str, int] = field(default_factory=dict)


def outcome_counts(results: list[procedure.Result]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in results:
        counts["entries"] += 1
        counts["won" if r["outcome"] == "won" else "waitlisted"] += 1
        if r["option"]:
            counts[f"won {r['option']}"] += 1
            counts[f"round {r['round']}"] += 1
        if r["childcare"] != "none":
            counts[f"childcare {r['childcare']}"] += 1
    return dict(sorted(counts.items()))


def lottery_draw(
    *,
    edition: Edition,
    actor: User | None,
    actor_label: str = audit.SYSTEM,
    randomness: str | None = None,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> DrawOutcome:
    """Draw the lottery (LOTTERY.md §3–4) once. Steps, in one transaction:

    1. claim the run with a conditional update (frozen → drawing): a second call, a retried
       task or a second staff member gets 0 rows and changes nothing;
    2. lock the edition's options and childcare bands (fixed order) so no capacity moves;
    3. compute seed, keys, allocation and waitlists with lottery.procedure;
    4. save every result, mark the run drawn, log it, and queue one result e-mail per active
       application; the e-mails are sent after commit. A failure anywhere rolls all of it back.
    A dry run computes the same thing and saves nothing.
    """
    now = now or timezone.now()
    run = LotteryRun.objects.filter(edition=edition).first()
    if run is None:
        raise LotteryRefused(_("Freeze the roll before the draw."))
    if randomness is None:
        randomness = run.public_randomness
    randomness = randomness.strip()
    if dry_run:
        roll = cast(procedure.Roll, json.loads(run.roll_json))
        results = procedure.allocate(roll, procedure.seed(run.roll_hash, run.secret, randomness))
        return DrawOutcome(False, _("Dry run: nothing was saved."), outcome_counts(results))
    with transaction.atomic():
        claimed = LotteryRun.objects.filter(pk=run.pk, state=LotteryRun.State.FROZEN).update(
            state=LotteryRun.State.DRAWING
        )
        if claimed != 1:
            return DrawOutcome(
                False, _("The lottery of this edition has already been drawn; nothing was changed.")
            )
        options = {
            o.code: o
            for o in Option.objects.select_for_update()
            .filter(session__edition=edition)
            .select_related("session")
            .order_by("pk")
        }
        list(
            ChildcareBand.objects.select_for_update()
            .filter(session__edition=edition)
            .order_by("pk")
        )
        run.refresh_from_db()
        roll = cast(procedure.Roll, json.loads(run.roll_json))
        seed = procedure.seed(run.roll_hash, run.secret, randomness)
        results = procedure.allocate(roll, seed)
        ids = dict(Application.objects.filter(edition=edition).values_list("number", "pk"))
        _save_results(run, results, ids, {code: o.pk for code, o in options.items()})
        Place.objects.bulk_create(
            (
                Place(
                    run=run,
                    application_id=ids[r["number"]],
                    option=options[r["option"]],
                    childcare=r["childcare"],
                    since=now,
                )
                for r in results
                if r["option"]
            ),
            batch_size=5000,
        )
        LotteryRun.objects.filter(pk=run.pk).update(
            state=LotteryRun.State.DRAWN,
            seed=seed.hex(),
            public_randomness=randomness,
            drawn_at=now,
            drawn_by=audit.actor_name(actor, actor_label),
        )
        counts = outcome_counts(results)
        audit.log_action(
            "lottery.drawn",
            actor=actor,
            actor_label=actor_label,
            edition=edition,
            data={"seed": seed.hex(), "public_randomness": randomness, **counts},
        )
        outbox_enqueue_query(
            kind=OutboxEmail.Kind.RESULT,
            applications=Application.objects.active().filter(
                edition=edition, lottery_result__run=run
            ),
        )
        # Applications that left between the freeze and the draw are the first events after
        # it, in the order they left, each followed by its settling (LOTTERY.md §6).
        run.refresh_from_db()
        departed = (
            Application.objects.filter(lottery_result__run=run)
            .exclude(status=Application.Status.ACTIVE)
            .order_by(Coalesce("withdrawn_at", "updated_at"), "number")
            .values_list("number", flat=True)
        )
        _depart_and_settle(run, list(departed), {o.pk: o for o in options.values()}, now)
        # Everything is written, nothing committed: a worker killed here must leave no trace.
        _test_pause()
    return DrawOutcome(True, _("The lottery has been drawn."), counts)


RESULT_COLUMNS = (
    "run_id",
    "application_id",
    "number",
    "key",
    "rank",
    "outcome",
    "option_id",
    "round",
    "childcare",
    "waitlist",
)


def _save_results(
    run: LotteryRun,
    results: list[procedure.Result],
    ids: dict[str, int],
    option_ids: dict[str, int],
) -> None:
    """100,000 rows: PostgreSQL's COPY is ten times faster than building model instances."""
    rows = (
        (
            run.pk,
            ids[r["number"]],
            r["number"],
            r["key"],
            r["rank"],
            r["outcome"],
            option_ids[r["option"]] if r["option"] else None,
            r["round"],
            r["childcare"],
            r["waitlist"],
        )
        for r in results
    )
    if connection.vendor == "postgresql":
        table = LotteryResult._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(RESULT_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row((*row[:-1], json.dumps(row[-1])))
        return
    LotteryResult.objects.bulk_create(
        (LotteryResult(**dict(zip(RESULT_COLUMNS, row, strict=True))) for row in rows),
        batch_size=5000,
    )


def lottery_audit(*, edition: Edition) -> procedure.AuditFile:
    """LOTTERY.md §6: published after the draw (no personal data)."""
    run = LotteryRun.objects.get(edition=edition)
    if run.state != LotteryRun.State.DRAWN:
        raise LotteryRefused(_("The audit file exists once the lottery has been drawn."))
    codes = {
        o.pk: o.code
        for o in Option.objects.filter(session__edition=edition).select_related("session")
    }
    results = [
        cast(procedure.Result, r.as_procedure_result(codes))
        for r in LotteryResult.objects.filter(run=run).order_by("rank")
    ]
    roll = cast(procedure.Roll, json.loads(run.roll_json))
    events: list[procedure.Event] = [
        {
            "time": e.at.isoformat(),
            "kind": cast(procedure.EventKind, e.kind),
            "number": e.number,
            "option": codes[e.option_id] if e.option_id else None,
            "childcare": cast(procedure.Childcare, e.childcare),
        }
        for e in LotteryEvent.objects.filter(run=run).order_by("id")
    ]
    deadlines = {s.code: s.promotion_deadline.isoformat() for s in edition.sessions.all()}
    return procedure.audit_file(
        roll, run.secret, run.public_randomness, results, events, promotion_deadlines=deadlines
    )


@dataclass
class OptionStanding:
    """One option now: who holds it and who waits for it, by number, in draw order."""

    option: Option
    holders: list[str]
    waiting: list[str]


@dataclass
class EntryStanding:
    """One entry now: the option held (with its childcare), or its places on waiting lists."""

    left: bool = False
    holding: Option | None = None
    childcare: str = LotteryResult.Childcare.NONE
    waiting: list[tuple[Option, int]] = field(default_factory=list)


@dataclass
class Standing:
    """The lottery as it stands now (§5): after every withdrawal and promotion since the draw."""

    options: list[OptionStanding]
    moves: list[LotteryEvent]  # promotions and childcare grants, in the order they happened
    entries: dict[str, EntryStanding]


def lottery_standing(*, run: LotteryRun) -> Standing:
    """The holders and waiting order of each option now, and the moves since the draw. Waiting
    lists are those of §4 recomputed from the current holdings among the entries still in the
    roll (LOTTERY.md §5)."""
    options = {
        o.code: o
        for o in Option.objects.filter(session__edition_id=run.edition_id).select_related("session")
    }
    now_state = _run_now(run, {o.pk: o for o in options.values()})
    choices = {entry["number"]: entry["choices"] for entry in now_state.roll["entries"]}
    left = {
        number
        for number, (_pk, status) in now_state.applications.items()
        if status != Application.Status.ACTIVE
    }
    standing = {code: OptionStanding(option, [], []) for code, option in sorted(options.items())}
    entries: dict[str, EntryStanding] = {}
    for number in now_state.order:
        if number in left:
            entries[number] = EntryStanding(left=True)
            continue
        entry = EntryStanding()
        if number in now_state.holdings:
            code, entry.childcare = now_state.holdings[number]
            entry.holding = options[code]
            standing[code].holders.append(number)
        better = choices[number]
        if entry.holding is not None:
            better = better[: better.index(entry.holding.code)]
        for code in better:
            waiting = standing[code].waiting
            waiting.append(number)
            entry.waiting.append((options[code], len(waiting)))
        entries[number] = entry
    moves = list(
        LotteryEvent.objects.filter(
            run=run, kind__in=[LotteryEvent.Kind.PROMOTED, LotteryEvent.Kind.CHILDCARE_GRANTED]
        )
        .select_related("option__session")
        .order_by("id")
    )
    return Standing(list(standing.values()), moves, entries)


def lottery_audit_json(*, edition: Edition) -> str:
    """The audit file as it is downloaded, from the public page, the console or the command."""
    return json.dumps(lottery_audit(edition=edition), ensure_ascii=False, indent=1)


def lottery_scheduled(*, now: dt.datetime | None = None) -> list[str]:
    """The periodic job: freeze what is due, draw what is due. Safe to run any number of times."""
    now = now or timezone.now()
    done = []
    for edition in Edition.objects.filter(freeze_at__lte=now, lottery__isnull=True):
        try:
            lottery_freeze(edition=edition, actor=None, now=now)
            done.append(f"frozen {edition.code}")
        except LotteryRefused as e:
            log.warning("Scheduled freeze of %s refused: %s", edition.code, e)
    for run in LotteryRun.objects.filter(
        state=LotteryRun.State.FROZEN, edition__draw_at__lte=now
    ).select_related("edition"):
        outcome = lottery_draw(edition=run.edition, actor=None, now=now)
        if outcome.drawn:
            done.append(f"drawn {run.edition.code}")
    return done


def _lock_capacities(edition_id: int) -> dict[int, Option]:
    """Every change of places in an edition queues here: the options and childcare bands are
    locked in a fixed order (by id), so two withdrawals never give away the same seat."""
    if getattr(settings, "LOTTERY_TEST_SKIP_LOCK", False):  # negative control in the tests only
        return {
            o.pk: o
            for o in Option.objects.filter(session__edition_id=edition_id).select_related("session")
        }
    options = {
        o.pk: o
        for o in Option.objects.select_for_update(of=("self",))
        .filter(session__edition_id=edition_id)
        .select_related("session")
        .order_by("pk")
    }
    list(
        ChildcareBand.objects.select_for_update()
        .filter(session__edition_id=edition_id)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return options


@transaction.atomic
def places_rebalance(
    *, application: Application, now: dt.datetime | None = None
) -> list[procedure.Change]:
    """LOTTERY.md §5 for one application that left after the freeze (withdrawn, or marked
    duplicate or invalid), whatever it held. Steps:

    1. lock the edition's capacities (see _lock_capacities), and only then read the run: before
       the draw nothing is written here (the draw records the departure as its first events),
       and a departure racing the draw waits for it and is recorded after it;
    2. write its departure event, give back what it held, and settle the edition
       (procedure.depart), promoting only in sessions whose promotion deadline is after ``now``;
    3. write the new places and the events, and e-mail each parent promoted or granted
       childcare, in words that say which.
    Returns the events written (empty when the application is not in a drawn roll).
    """
    now = now or timezone.now()
    options = _lock_capacities(application.edition_id)
    _test_pause()
    run = LotteryRun.objects.filter(
        edition_id=application.edition_id, state=LotteryRun.State.DRAWN
    ).first()
    if run is None or not LotteryResult.objects.filter(run=run, number=application.number).exists():
        return []
    changes = _depart_and_settle(run, [application.number], options, now)
    # Everything is written, nothing committed: a worker killed here must leave no trace.
    _test_pause()
    return changes


@dataclass
class _RunNow:
    """A drawn run as it stands: its roll, the draw order, what each entry holds now, and each
    entry's application (id, status)."""

    roll: procedure.Roll
    order: list[str]
    holdings: dict[str, procedure.Holding]
    applications: dict[str, tuple[int, str]]


def _run_now(run: LotteryRun, options: dict[int, Option]) -> _RunNow:
    return _RunNow(
        roll=cast(procedure.Roll, json.loads(run.roll_json)),
        order=list(
            LotteryResult.objects.filter(run=run).order_by("rank").values_list("number", flat=True)
        ),
        holdings={
            number: procedure.Holding(options[option_id].code, cast(procedure.Childcare, care))
            for number, option_id, care in Place.objects.filter(run=run).values_list(
                "application__number", "option_id", "childcare"
            )
        },
        applications={
            number: (pk, status)
            for number, pk, status in Application.objects.filter(
                lottery_result__run=run
            ).values_list("number", "pk", "status")
        },
    )


def _depart_and_settle(
    run: LotteryRun, departing: list[str], options: dict[int, Option], now: dt.datetime
) -> list[procedure.Change]:
    """Each of ``departing`` (entry numbers, in the order they left) departs and the edition
    settles after each (procedure.depart); the places, events, audit rows and e-mails follow."""
    by_code = {o.code: o for o in options.values()}
    now_state = _run_now(run, options)
    statuses = {number: status for number, (_pk, status) in now_state.applications.items()}
    departed = set(
        LotteryEvent.objects.filter(
            run=run, kind__in=[LotteryEvent.Kind.WITHDRAWN, LotteryEvent.Kind.REMOVED]
        ).values_list("number", flat=True)
    )
    # Entries that left before every departure was an event (an older version) hold nothing.
    gone = departed | (
        {n for n, status in statuses.items() if status != Application.Status.ACTIVE}
        - set(departing)
    )
    open_sessions = {o.session.code for o in options.values() if now < o.session.promotion_deadline}
    before = holdings = now_state.holdings
    changes: list[procedure.Change] = []
    for number in departing:
        left: Literal["withdrawn", "removed"] = (
            "withdrawn" if statuses.get(number) == Application.Status.WITHDRAWN else "removed"
        )
        settled = procedure.depart(
            now_state.roll, now_state.order, holdings, gone, number, left, open_sessions
        )
        gone.add(number)
        holdings = settled.holdings
        changes += settled.changes

    Place.objects.filter(run=run, application__number__in=set(before) - set(holdings)).delete()
    promoted = {c.number for c in changes if c.kind == "promoted"}
    for number, holding in holdings.items():
        if before.get(number) != holding:
            Place.objects.update_or_create(
                application_id=now_state.applications[number][0],
                defaults={
                    "run": run,
                    "option": by_code[holding.option],
                    "childcare": holding.childcare,
                    "since": now,
                    **({"promoted": True} if number in promoted else {}),
                },
            )
    LotteryEvent.objects.bulk_create(
        LotteryEvent(
            run=run,
            at=now,
            kind=change.kind,
            number=change.number,
            option=by_code[change.option] if change.option else None,
            childcare=change.childcare,
        )
        for change in changes
    )
    granted = {c.number for c in changes if c.kind == "childcare_granted"} - promoted
    for application in Application.objects.active().filter(number__in=promoted | granted):
        holding = holdings[application.number]
        is_promotion = application.number in promoted
        audit.log_action(
            "lottery.promoted" if is_promotion else "lottery.childcare_granted",
            application=application,
            data={"place": holding.option, "childcare": holding.childcare},
        )
        email = OutboxEmail.Kind.PROMOTED if is_promotion else OutboxEmail.Kind.CHILDCARE_GRANTED
        outbox_enqueue(kind=email, application=application)
    return changes


def _test_pause() -> None:
    """Tests widen the race window here to prove that the lock is what prevents overbooking."""
    pause = getattr(settings, "LOTTERY_TEST_PAUSE_SECONDS", 0)
    if pause:
        time.sleep(pause)
