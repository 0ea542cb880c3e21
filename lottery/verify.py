"""Check a published audit file of the lottery (LOTTERY.md §6) by recomputing everything in it.

    python -m lottery.verify FILE

Run it from the folder that holds lottery/; it needs Python 3.11 and lottery/procedure.py, no
Django and no database. From the roll in the file it recomputes the roll hash, the commitment to
the secret, the seed, every key and rank, and the whole allocation with its waitlists, then
compares each with the file. Then it replays the events after the draw (§5): from the draw's
results, each withdrawal or removal in the file is applied at its time, the edition is settled
with the promotion deadlines in the file, and the moves the procedure makes must be exactly the
events that follow it in the file. Prints "OK: N results and M events verified" and exits 0, or
prints the first difference (the entry numbers, what the file says and what the procedure
says) and exits 1. Exits 2 when the file cannot be read as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO, cast

from lottery import procedure

AUDIT_KEYS = ("roll", "roll_hash", "commitment", "secret", "public_randomness", "seed", "results")
ROLL_KEYS = ("version", "edition", "options", "childcare", "entries")
OPTION_KEYS = ("session", "unit", "capacity")
ENTRY_KEYS = ("number", "choices", "heads", "childcare", "fallback", "weight")
RESULT_KEYS = ("number", "key", "rank", "outcome", "option", "round", "childcare", "waitlist")
EVENT_KEYS = ("time", "kind", "number", "option", "childcare")
EVENT_KINDS = ("withdrawn", "removed", "released", "promoted", "childcare_granted")
SECRET = re.compile(r"[0-9a-f]{64}")


def verify(audit: dict[str, Any]) -> list[str]:
    """Every difference between the file and the procedure, first one first; [] when it all
    matches. A file whose form is wrong gets one message saying where."""
    problem = _form_problem(audit)
    if problem:
        return [problem]
    roll = cast(procedure.Roll, audit["roll"])
    differences = []

    roll_hash = procedure.roll_hash(roll)
    if audit["roll_hash"] != roll_hash:
        differences.append(
            f"roll_hash: file says {_show(audit['roll_hash'])}, "
            f"but the roll in the file hashes to {_show(roll_hash)}"
        )
    secret = audit["secret"]
    if not SECRET.fullmatch(secret):
        differences.append("secret: expected 64 lowercase hexadecimal digits (32 bytes)")
    commitment = procedure.commitment(secret)
    if audit["commitment"] != commitment:
        differences.append(
            f"commitment: file says {_show(audit['commitment'])}, "
            f"but the SHA-256 of the secret is {_show(commitment)}"
        )
    seed = procedure.seed(roll_hash, secret, audit["public_randomness"])
    if audit["seed"] != seed.hex():
        differences.append(
            f"seed: file says {_show(audit['seed'])}, procedure gives {_show(seed.hex())} "
            "(from the roll hash, the secret and the public randomness)"
        )
    differences.extend(_result_differences(audit["results"], procedure.allocate(roll, seed)))
    if differences:
        return differences
    # The events after the draw, once the draw itself matches.
    problem = _events_problem(audit)
    return [problem] if problem else _event_differences(audit)


def replay(audit: dict[str, Any]) -> tuple[dict[str, procedure.Holding], list[procedure.Event]]:
    """§5 from the file: the holdings after its events, and the events the procedure gives for
    the withdrawals and removals in the file (each followed by its settling), in order. The
    file's results must be the draw's (verify checks that first)."""
    roll = cast(procedure.Roll, audit["roll"])
    results = cast(list[procedure.Result], audit["results"])
    order = [r["number"] for r in sorted(results, key=lambda r: r["rank"])]
    holdings = procedure.holdings_from_results(results)
    deadlines = audit.get("promotion_deadlines", {})
    gone: set[str] = set()
    expected: list[procedure.Event] = []
    for event in audit.get("events", []):
        if event["kind"] not in procedure.DEPARTURES or event["number"] in gone:
            continue
        settled = procedure.depart(
            roll,
            order,
            holdings,
            gone,
            event["number"],
            event["kind"],
            procedure.open_sessions(deadlines, event["time"]),
        )
        gone.add(event["number"])
        holdings = settled.holdings
        expected += [_event(event["time"], change) for change in settled.changes]
    return holdings, expected


def _event(time: str, change: procedure.Change) -> procedure.Event:
    return {
        "time": time,
        "kind": change.kind,
        "number": change.number,
        "option": change.option,
        "childcare": change.childcare,
    }


def _event_differences(audit: dict[str, Any]) -> list[str]:
    """The first event of the file that is not what replaying §5 gives at its place."""
    found = audit.get("events", [])
    _holdings, expected = replay(audit)
    for index, (in_file, event) in enumerate(zip(found, expected, strict=False)):
        if procedure.canonical_json(in_file) != procedure.canonical_json(event):
            return [
                f"events[{index}] (entry {in_file['number']}): file says {_show(in_file)}, "
                f"procedure gives {_show(event)}"
            ]
    if len(found) > len(expected):
        extra = found[len(expected)]
        return [
            f"events[{len(expected)}] (entry {extra['number']}): file says {_show(extra)}, "
            "procedure gives no further event"
        ]
    if len(found) < len(expected):
        missing = expected[len(found)]
        return [
            f"events[{len(found)}] (entry {missing['number']}): the file ends, "
            f"procedure gives {_show(missing)}"
        ]
    return []


def _result_differences(found: list[dict[str, Any]], computed: list[procedure.Result]) -> list[str]:
    expected = cast(list[dict[str, Any]], computed)
    numbers = {result["number"] for result in expected}
    seen: set[str] = set()
    for index, result in enumerate(found):
        if result["number"] not in numbers:
            return [f"results[{index}]: entry {result['number']} is not in the roll"]
        if result["number"] in seen:
            return [f"results[{index}]: entry {result['number']} appears twice in results"]
        seen.add(result["number"])
    for result in expected:
        if result["number"] not in seen:
            return [f"entry {result['number']} is in the roll but missing from results"]

    differences = []
    for index, (in_file, result) in enumerate(zip(found, expected, strict=True)):
        for field in RESULT_KEYS:
            # Compared as canonical JSON, so that 1 and true or 1 and 1.0 are not taken as equal.
            file_value, value = in_file[field], result[field]
            if procedure.canonical_json(file_value) != procedure.canonical_json(value):
                note = " (results are listed by rank)" if field == "number" else ""
                differences.append(
                    f"results[{index}].{field} (entry {in_file['number']}): "
                    f"file says {_show(file_value)}, procedure gives {_show(value)}{note}"
                )
                break  # one difference per result is enough to reject it
    return differences


# The form of the file (LOTTERY.md §2 and §6), checked before anything is computed from it.


def _form_problem(audit: object) -> str | None:
    problem = _keys_problem(
        "the file", audit, AUDIT_KEYS, optional=("events", "promotion_deadlines")
    )
    if problem:
        return problem
    assert isinstance(audit, dict)
    for name in ("roll_hash", "commitment", "secret", "public_randomness", "seed"):
        if not isinstance(audit[name], str):
            return f"{name}: expected a string, found {_show(audit[name])}"
    return _roll_problem(audit["roll"]) or _list_problem("results", audit["results"], RESULT_KEYS)


def _roll_problem(roll: object) -> str | None:
    problem = _keys_problem("roll", roll, ROLL_KEYS)
    if problem:
        return problem
    assert isinstance(roll, dict)
    if roll["version"] != procedure.VERSION:
        return (
            f"roll.version: file says {_show(roll['version'])}, "
            f"this verifier implements {_show(procedure.VERSION)}"
        )
    if not isinstance(roll["edition"], str):
        return "roll.edition: expected a string"
    return (
        _options_problem(roll["options"])
        or _bands_problem("roll.childcare", roll["childcare"])
        or _entries_problem(roll["entries"], roll["options"])
    )


def _options_problem(options: object) -> str | None:
    if not isinstance(options, dict):
        return "roll.options: expected an object"
    for name, spec in options.items():
        where = f"roll.options[{_show(name)}]"
        problem = _keys_problem(where, spec, OPTION_KEYS)
        if problem:
            return problem
        session, _, kind = name.rpartition(":")
        unit = {"venue": "heads", "online": "applications"}.get(kind)
        if not session or unit is None:
            return f"{where}: an option is named <session>:venue or <session>:online"
        if spec["session"] != session or spec["unit"] != unit:
            return f"{where}: expected session {_show(session)} and unit {_show(unit)}"
        if not _is_int(spec["capacity"], 0):
            return f"{where}.capacity: expected an integer >= 0, found {_show(spec['capacity'])}"
    return None


def _bands_problem(where: str, value: object) -> str | None:
    """session -> band -> a count >= 0 (childcare slots, or children of an entry)."""
    if not isinstance(value, dict):
        return f"{where}: expected an object"
    for session, bands in value.items():
        if not isinstance(bands, dict):
            return f"{where}[{_show(session)}]: expected an object"
        for band, count in bands.items():
            if not _is_int(count, 0):
                return f"{where}[{_show(session)}][{_show(band)}]: expected an integer >= 0"
    return None


def _entries_problem(entries: object, options: dict[str, Any]) -> str | None:
    problem = _list_problem("roll.entries", entries, ENTRY_KEYS)
    if problem:
        return problem
    assert isinstance(entries, list)
    previous = None
    for index, entry in enumerate(entries):
        where = f"roll.entries[{index}]"
        number, choices = entry["number"], entry["choices"]
        if not isinstance(number, str) or not number:
            return f"{where}.number: expected a non-empty string"
        if previous is not None and not previous < number:
            return (
                f"{where}: entries must be sorted by number, each once; {number} follows {previous}"
            )
        previous = number
        if (
            not isinstance(choices, list)
            or not 1 <= len(choices) <= 3
            or not all(isinstance(choice, str) and choice in options for choice in choices)
            or len(set(choices)) != len(choices)
        ):
            return f"{where}.choices: expected 1 to 3 distinct options of the roll"
        if not _is_int(entry["heads"], 1, 5):
            return f"{where}.heads: expected an integer from 1 to 5, found {_show(entry['heads'])}"
        problem = _bands_problem(f"{where}.childcare", entry["childcare"])
        if problem:
            return problem
        if entry["fallback"] not in ("hall", "skip"):
            return f'{where}.fallback: expected "hall" or "skip", found {_show(entry["fallback"])}'
        if not _is_int(entry["weight"], 1):
            return f"{where}.weight: expected an integer >= 1, found {_show(entry['weight'])}"
    return None


def _events_problem(audit: dict[str, Any]) -> str | None:
    """Events (optional: none before anyone left) need the promotion deadlines of every
    session of the roll, to know which sessions were open at each withdrawal."""
    events = audit.get("events", [])
    problem = _list_problem("events", events, EVENT_KEYS)
    if problem or not events:
        return problem
    sessions = {spec["session"] for spec in audit["roll"]["options"].values()}
    deadlines = audit.get("promotion_deadlines")
    if not isinstance(deadlines, dict) or set(deadlines) != sessions:
        return f"promotion_deadlines: expected an object with a time for each of {sorted(sessions)}"
    for session, deadline in deadlines.items():
        if not _is_time(deadline):
            return f"promotion_deadlines[{_show(session)}]: expected ISO 8601 time with offset"
    numbers = {entry["number"] for entry in audit["roll"]["entries"]}
    previous = None
    for index, event in enumerate(events):
        if event["number"] not in numbers:
            return f"events[{index}]: entry {_show(event['number'])} is not in the roll"
        if event["option"] is not None and event["option"] not in audit["roll"]["options"]:
            return f"events[{index}]: option {_show(event['option'])} is not in the roll"
        if event["kind"] not in EVENT_KINDS:
            return f"events[{index}].kind: expected one of {list(EVENT_KINDS)}"
        if event["childcare"] not in ("none", "granted", "waitlisted"):
            return f'events[{index}].childcare: expected "none", "granted" or "waitlisted"'
        if not _is_time(event["time"]):
            return f"events[{index}].time: expected ISO 8601 time with offset"
        moment = dt.datetime.fromisoformat(event["time"])
        if previous is not None and moment < previous:
            return f"events[{index}]: listed after a later event (events are in time order)"
        previous = moment
    return None


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return dt.datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        return False


def _list_problem(where: str, value: object, keys: Sequence[str]) -> str | None:
    """A list of objects with exactly these keys; result numbers must be strings."""
    if not isinstance(value, list):
        return f"{where}: expected a list"
    for index, item in enumerate(value):
        problem = _keys_problem(f"{where}[{index}]", item, keys)
        if problem:
            return problem
        assert isinstance(item, dict)
        if "number" in keys and not isinstance(item["number"], str):
            return f"{where}[{index}].number: expected a string"
    return None


def _keys_problem(
    where: str, value: object, keys: Sequence[str], optional: Sequence[str] = ()
) -> str | None:
    if not isinstance(value, dict):
        return f"{where}: expected an object"
    for key in keys:
        if key not in value:
            return f"{where}: missing {_show(key)}"
    for key in value:
        if key not in keys and key not in optional:
            return f"{where}: unexpected {_show(key)}"
    return None


def _is_int(value: object, low: int, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and low <= value
        and (high is None or value <= high)
    )


def _show(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    """`python -m lottery.verify FILE`; returns the exit status: 0 OK, 1 different, 2 unreadable."""
    out = stdout or sys.stdout
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: python -m lottery.verify AUDIT_FILE.json", file=out)
        return 2
    try:
        with open(args[0], encoding="utf-8") as file:
            audit = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        print(f"cannot read {args[0]}: {error}", file=out)
        return 2
    if not isinstance(audit, dict):
        print(f"cannot read {args[0]}: an audit file is a JSON object", file=out)
        return 2

    differences = verify(audit)
    if differences:
        more = len(differences) - 1
        print(differences[0] + (f" (and {more} more differences)" if more else ""), file=out)
        return 1
    events = len(audit.get("events", []))
    print(f"OK: {len(audit['results'])} results and {events} events verified", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
