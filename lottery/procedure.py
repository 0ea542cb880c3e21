"""The lottery procedure `seminar-lottery/1`, exactly as published in LOTTERY.md.

This module is meant to be read next to LOTTERY.md by anyone who wants to check the draw: it uses
the Python standard library only, and every function names the section (§) it implements.
Nothing here touches the database; the Django code freezes the roll, stores the secret and the
results, and calls these functions.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import secrets
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from typing import Literal, NamedTuple, TypedDict

VERSION = "seminar-lottery/1"

Childcare = Literal["none", "granted", "waitlisted"]


class OptionSpec(TypedDict):
    """§1: `<session>:venue` counts heads, `<session>:online` counts applications."""

    session: str
    unit: Literal["heads", "applications"]
    capacity: int


class Entry(TypedDict):
    """§2: one active application in the roll."""

    number: str
    choices: list[str]  # 1 to 3 distinct options, best first
    heads: int  # adults plus all accompanying children, 1 to 5
    childcare: dict[str, dict[str, int]]  # session -> band -> children; {} when none
    fallback: Literal["hall", "skip"]
    weight: int


class Roll(TypedDict):
    """§2: the entry roll, frozen before any randomness exists."""

    version: str
    edition: str
    options: dict[str, OptionSpec]
    childcare: dict[str, dict[str, int]]  # session -> band -> slots
    entries: list[Entry]  # sorted by number


class Result(TypedDict):
    """§4 and §6: what the draw gave one entry."""

    number: str
    key: str
    rank: int
    outcome: Literal["won", "waitlisted"]
    option: str | None
    round: int | None
    childcare: Childcare
    waitlist: dict[str, int]  # option -> position on that option's waitlist


EventKind = Literal["withdrawn", "removed", "released", "promoted", "childcare_granted"]
DEPARTURES = ("withdrawn", "removed")


class Event(TypedDict):
    """§6: something that happened after the draw: a withdrawal or removal, then what the
    settling after it moved, each with the childcare state it leaves."""

    time: str  # ISO 8601 with its offset
    kind: EventKind
    number: str
    option: str | None
    childcare: Childcare


class AuditFile(TypedDict):
    """§6: everything needed to recompute the draw, without personal data."""

    roll: Roll
    roll_hash: str
    commitment: str
    secret: str
    public_randomness: str
    seed: str  # hex of the seed bytes
    results: list[Result]  # sorted by rank: the draw itself, before any withdrawal
    promotion_deadlines: dict[str, str]  # session -> ISO 8601 time with offset (exclusive)
    events: list[Event]  # in the order they happened


# §2 and §3: hashes, commitment, seed and keys


def canonical_json(value: object) -> bytes:
    """§2: the one byte encoding of a value that every hash is computed over."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
        "utf-8"
    )


def roll_hash(roll: Roll) -> str:
    """§2: hex SHA-256 of the canonical JSON of the roll (only its five published keys)."""
    published = {
        "version": roll["version"],
        "edition": roll["edition"],
        "options": roll["options"],
        "childcare": roll["childcare"],
        "entries": roll["entries"],
    }
    return hashlib.sha256(canonical_json(published)).hexdigest()


def new_secret() -> str:
    """§2: the operator's 32-byte secret, as lowercase hex. Drawn at the freeze, kept until the
    audit."""
    return secrets.token_hex(32)


def commitment(secret_hex: str) -> str:
    """§2: published at the freeze, so that the secret cannot be changed afterwards."""
    return hashlib.sha256(secret_hex.encode("utf-8")).hexdigest()


def seed(roll_hash: str, secret_hex: str, public_randomness: str) -> bytes:
    """§3: the only source of randomness of the draw (32 raw bytes)."""
    text = f"{VERSION}\n{roll_hash}\n{secret_hex}\n{public_randomness.strip()}"
    return hashlib.sha256(text.encode("utf-8")).digest()


def entry_key(seed: bytes, number: str, weight: int) -> str:
    """§3: the entry's key; with weight w the entry gets w tickets and keeps the smallest."""
    if weight == 1:
        return _ticket(seed, number, 1)  # the usual case, on its own because it is 3 times faster
    return min(_ticket(seed, number, j) for j in range(1, weight + 1))


def _ticket(seed: bytes, number: str, j: int) -> str:
    return hashlib.sha256(seed + f"{number}#{j}".encode()).hexdigest()


def draw_order(entries: Iterable[Entry], seed: bytes) -> list[tuple[Entry, str]]:
    """§3: (entry, key) pairs sorted by (key, number); an entry's rank is its position + 1."""
    by_number = sorted(entries, key=itemgetter("number"))
    keyed = [(entry, entry_key(seed, entry["number"], entry["weight"])) for entry in by_number]
    keyed.sort(key=itemgetter(1))  # a stable sort: entries with equal keys stay in number order
    return keyed


# §4: allocation


@dataclass
class _Pools:
    """What is left of each option's capacity (`left`) and each session's childcare slots."""

    options: Mapping[str, OptionSpec]
    left: dict[str, int]
    cc_left: dict[str, dict[str, int]]

    @classmethod
    def full(cls, roll: Roll) -> _Pools:
        return cls(
            options=roll["options"],
            left={option: spec["capacity"] for option, spec in roll["options"].items()},
            cc_left={session: dict(bands) for session, bands in roll["childcare"].items()},
        )

    def fit(self, entry: Entry, option: str) -> Childcare | None:
        """§4: the childcare status the entry would get with `option`, or None if it does not
        fit."""
        spec = self.options[option]
        if spec["unit"] == "applications":
            return "none" if self.left[option] >= 1 else None
        if self.left[option] < entry["heads"]:
            return None
        children = entry["childcare"].get(spec["session"], {})
        if not children:
            return "none"
        if self.children_fit(spec["session"], children):
            return "granted"
        if entry["fallback"] == "hall":
            return "waitlisted"
        return None

    def children_fit(self, session: str, children: Mapping[str, int]) -> bool:
        slots = self.cc_left.get(session, {})
        return all(slots.get(band, 0) >= n for band, n in children.items())

    def take(self, entry: Entry, option: str, childcare: Childcare, sign: int = 1) -> None:
        """Take the entry's place (sign=1) or give it back (sign=-1)."""
        spec = self.options[option]
        self.left[option] -= sign * (entry["heads"] if spec["unit"] == "heads" else 1)
        if childcare == "granted":
            self.take_children(spec["session"], entry["childcare"][spec["session"]], sign)

    def take_children(self, session: str, children: Mapping[str, int], sign: int = 1) -> None:
        slots = self.cc_left.setdefault(session, {})
        for band, n in children.items():
            slots[band] = slots.get(band, 0) - sign * n


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Allocation and promotion create no reference cycles, but so many small objects that
    Python's cycle collector would walk the whole roll again and again: pausing it meanwhile
    halves the time for 100,000 entries."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_cycle_collector_paused()
def allocate(roll: Roll, seed: bytes) -> list[Result]:
    """§4: the draw. Returns one result per entry, sorted by rank.

    1. Put the entries in draw order (§3).
    2. Rounds 1, 2, 3: scan the draw order; each entry that holds nothing yet gets its choice
       number `round` if it fits; one that does not fit is passed over (no stop at a misfit).
    3. Waitlists: each option's waitlist is, in draw order, the entries that listed it and hold
       nothing or hold an option they ranked below it.
    """
    order = draw_order(roll["entries"], seed)
    pools = _Pools.full(roll)
    won: dict[str, tuple[int, Childcare]] = {}  # number -> (round, childcare)
    unplaced = [entry for entry, _key in order]
    for round_ in (1, 2, 3):
        still_unplaced = []
        for entry in unplaced:
            if len(entry["choices"]) < round_:
                continue  # no choice left: unplaced for good
            option = entry["choices"][round_ - 1]
            childcare = pools.fit(entry, option)
            if childcare is None:
                still_unplaced.append(entry)  # passed over; the scan goes on
            else:
                pools.take(entry, option, childcare)
                won[entry["number"]] = (round_, childcare)
        unplaced = still_unplaced

    waiting = dict.fromkeys(roll["options"], 0)  # option -> length of its waitlist so far
    results: list[Result] = []
    for rank, (entry, key) in enumerate(order, start=1):
        holding = won.get(entry["number"])
        better = entry["choices"] if holding is None else entry["choices"][: holding[0] - 1]
        waitlist = {}
        for option in better:
            waiting[option] += 1
            waitlist[option] = waiting[option]
        results.append(
            {
                "number": entry["number"],
                "key": key,
                "rank": rank,
                "outcome": "waitlisted" if holding is None else "won",
                "option": None if holding is None else entry["choices"][holding[0] - 1],
                "round": None if holding is None else holding[0],
                "childcare": "none" if holding is None else holding[1],
                "waitlist": waitlist,
            }
        )
    return results


def _venue_options(roll: Roll, session: str) -> set[str]:
    return {
        option
        for option, spec in roll["options"].items()
        if spec["session"] == session and spec["unit"] == "heads"
    }


def childcare_waitlist(roll: Roll, results: Iterable[Result], session: str) -> list[str]:
    """§4: numbers holding the session's venue with childcare "waitlisted", in draw order."""
    venues = _venue_options(roll, session)
    return [
        result["number"]
        for result in sorted(results, key=lambda result: result["rank"])
        if result["option"] in venues and result["childcare"] == "waitlisted"
    ]


# §5: withdrawals and promotions


class Holding(NamedTuple):
    """The option an entry holds now, and its childcare status there."""

    option: str
    childcare: Childcare


class Change(NamedTuple):
    """One event of §6, without its time.

    kind: "withdrawn" or "removed" (the entry left; `option` is what it held, or None),
    "released" (an entry promoted to a better choice gave up this option), "promoted" (the entry
    now holds this option) or "childcare_granted" (the entry, holding this venue, now has
    childcare). `childcare` is the childcare state the event leaves: for a departure or a release
    the state it held there ("none" when it held nothing), for a promotion the state it gets.
    """

    kind: EventKind
    number: str
    option: str | None
    childcare: Childcare


class Settled(NamedTuple):
    holdings: dict[str, Holding]
    changes: list[Change]


def holdings_from_results(results: Iterable[Result]) -> dict[str, Holding]:
    """The holdings right after the draw."""
    return {
        result["number"]: Holding(result["option"], result["childcare"])
        for result in results
        if result["option"] is not None
    }


def open_sessions(deadlines: Mapping[str, str], time: str) -> set[str]:
    """§5: the sessions whose promotion deadline has not passed at `time`. A deadline is
    exclusive: at the deadline itself the session is closed. Times are ISO 8601 with offset."""
    moment = dt.datetime.fromisoformat(time)
    return {
        session
        for session, deadline in deadlines.items()
        if moment < dt.datetime.fromisoformat(deadline)
    }


def depart(
    roll: Roll,
    order: Sequence[str],
    holdings: Mapping[str, Holding],
    gone: Collection[str],
    number: str,
    kind: Literal["withdrawn", "removed"],
    open_sessions: Collection[str],
) -> Settled:
    """§5: one entry leaves (withdrawn, or removed as a duplicate), whatever it holds, and the
    edition settles. `gone` is every entry that left before it. Returns the holdings after, and
    the events in order: the departure first, then every move of the settling."""
    if number in gone or not any(entry["number"] == number for entry in roll["entries"]):
        raise ValueError(f"{number} is not an entry of the roll that is still in it")
    held = holdings.get(number)
    departure = Change(
        kind, number, held.option if held else None, held.childcare if held else "none"
    )
    rest = {n: h for n, h in holdings.items() if n != number}
    settled = settle(roll, order, rest, {*gone, number}, open_sessions)
    return Settled(settled.holdings, [departure, *settled.changes])


@_cycle_collector_paused()
def settle(
    roll: Roll,
    order: Sequence[str],
    holdings: Mapping[str, Holding],
    gone: Collection[str],
    open_sessions: Collection[str],
) -> Settled:
    """§5: the settling loop, run after every withdrawal.

    `order` is every entry number of the roll in draw order (the results sorted by rank),
    `holdings` what the entries still in the roll hold now, `gone` every entry that left, and
    `open_sessions` the sessions whose promotion deadline has not passed. Repeat until a whole
    round moves no one:

    1. session by session (by code), each entry on the session's childcare waitlist (holding its
       venue with childcare "waitlisted"), in draw order, whose children all fit takes the slots;
    2. option by option (by name), the first entry of its waitlist (§4, recomputed from the
       current holdings) that fits under the rules of §4 releases what it held and takes the
       option, and the round starts again at step 1: one move per round.

    Every move is to a choice the entry ranked higher, so the loop ends. A place released in a
    closed session stays empty. Returns the holdings after, and the moves in order.
    """
    entries = {entry["number"]: entry for entry in roll["entries"]}
    if len(order) != len(entries) or set(order) != entries.keys():
        raise ValueError("order must list every entry of the roll exactly once")
    for number, (option, _childcare) in holdings.items():
        if number not in entries or option not in entries[number]["choices"]:
            raise ValueError(f"{number} holds {option}, which is not one of its choices")
        if number in gone:
            raise ValueError(f"{number} left the roll but still holds {option}")

    pools = _Pools.full(roll)
    current: dict[str, Holding] = {}
    for number in order:
        holding = holdings.get(number)
        if holding is not None:
            pools.take(entries[number], holding.option, holding.childcare)
            current[number] = holding

    # Each option's candidates in draw order, with the position of the option in their choices.
    candidates: dict[str, list[tuple[Entry, int]]] = {option: [] for option in roll["options"]}
    for number in order:
        if number not in gone:
            for index, option in enumerate(entries[number]["choices"]):
                candidates[option].append((entries[number], index))
    options = sorted(
        option for option in roll["options"] if _session(roll, option) in open_sessions
    )
    venues = sorted(
        (_session(roll, option), option)
        for option in options
        if roll["options"][option]["unit"] == "heads"
    )

    changes: list[Change] = []
    moved = True
    while moved:
        moved = False
        for session, venue in venues:  # step 1
            for entry, _index in candidates[venue]:
                number = entry["number"]
                if current.get(number) != (venue, "waitlisted"):
                    continue
                children = entry["childcare"][session]
                if pools.children_fit(session, children):
                    pools.take_children(session, children)
                    current[number] = Holding(venue, "granted")
                    changes.append(Change("childcare_granted", number, venue, "granted"))
                    moved = True
        for option in options:  # step 2
            promoted = _first_that_fits(candidates[option], option, current, pools)
            if promoted is None:
                continue
            entry, childcare = promoted
            number = entry["number"]
            held = current.get(number)
            if held is not None:
                pools.take(entry, held.option, held.childcare, sign=-1)
                changes.append(Change("released", number, held.option, held.childcare))
            pools.take(entry, option, childcare)
            current[number] = Holding(option, childcare)
            changes.append(Change("promoted", number, option, childcare))
            moved = True
            break  # one move per round: start again at step 1
    return Settled(current, changes)


def _session(roll: Roll, option: str) -> str:
    return roll["options"][option]["session"]


def _first_that_fits(
    candidates: Iterable[tuple[Entry, int]],
    option: str,
    current: Mapping[str, Holding],
    pools: _Pools,
) -> tuple[Entry, Childcare] | None:
    """The first entry of the option's waitlist, in draw order, that fits it now."""
    for entry, index in candidates:
        held = current.get(entry["number"])
        if held is not None and entry["choices"].index(held.option) <= index:
            continue  # holds this option or one it ranked higher: not on the waitlist
        childcare = pools.fit(entry, option)
        if childcare is not None:
            return entry, childcare
    return None


# §6: the audit file


def audit_file(
    roll: Roll,
    secret_hex: str,
    public_randomness: str,
    results: Iterable[Result],
    events: Iterable[Event] = (),
    promotion_deadlines: Mapping[str, str] | None = None,
) -> AuditFile:
    """§6: the published audit file; `results` are the draw's, `events` what happened since."""
    hashed = roll_hash(roll)
    return {
        "roll": {
            "version": roll["version"],
            "edition": roll["edition"],
            "options": roll["options"],
            "childcare": roll["childcare"],
            "entries": roll["entries"],
        },
        "roll_hash": hashed,
        "commitment": commitment(secret_hex),
        "secret": secret_hex,
        "public_randomness": public_randomness,
        "seed": seed(hashed, secret_hex, public_randomness).hex(),
        "results": sorted(results, key=lambda result: result["rank"]),
        "promotion_deadlines": dict(sorted((promotion_deadlines or {}).items())),
        "events": list(events),
    }
