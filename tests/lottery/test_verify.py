"""The verifier recomputes a published audit file and names the first thing that does not match.
No database: it reads a file."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from lottery import procedure
from lottery.verify import main, replay, verify
from tests.lottery.test_procedure import PROPERTIES, make_entry, make_roll, rolls

ROOT = Path(__file__).resolve().parents[2]
SECRET = "c0ffee" * 10 + "abcd"


def make_audit() -> dict[str, Any]:
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"tama:venue": 6, "tama:online": 2, "center:venue": 4},
        [
            make_entry("A3", "tama:venue", "tama:online", heads=3, childcare=children),
            make_entry("B7", "tama:venue", "center:venue", heads=2, childcare=children),
            make_entry("C2", "center:venue", "tama:online", heads=4, fallback="skip"),
            make_entry("D9", "tama:online"),
            make_entry("E4", "tama:venue", "center:venue", "tama:online", heads=3, weight=2),
            make_entry("F1", "center:venue", heads=2, childcare={"center": {"3-5": 1}}),
            make_entry("G5", "tama:online", "tama:venue", heads=1),
            make_entry("H8", "tama:venue", heads=5, childcare=children, fallback="skip"),
        ],
        childcare={"tama": {"0-2": 1}, "center": {"3-5": 1}},
    )
    hashed = procedure.roll_hash(roll)
    results = procedure.allocate(roll, procedure.seed(hashed, SECRET, "beacon 9001"))
    # The draw (in this order): D9 tama:online, E4 tama:venue, H8 -, A3 tama:venue with
    # childcare, B7 -, C2 center:venue, G5 tama:online, F1 -. The events below are written out
    # by hand from LOTTERY.md §5, not computed by the code under test.
    assert [(r["number"], r["option"]) for r in results] == [
        ("D9", "tama:online"),
        ("E4", "tama:venue"),
        ("H8", None),
        ("A3", "tama:venue"),
        ("B7", None),
        ("C2", "center:venue"),
        ("G5", "tama:online"),
        ("F1", None),
    ]
    audit = procedure.audit_file(
        roll, SECRET, "beacon 9001", results, EVENTS, promotion_deadlines=DEADLINES
    )
    return json.loads(json.dumps(audit))  # exactly what a reader of the published file gets


DEADLINES = {"tama": "2026-06-01T12:00:00+09:00", "center": "2026-06-08T12:00:00+09:00"}


def event(time: str, kind: str, number: str, option: str | None, childcare: str = "none") -> Any:
    return {"time": time, "kind": kind, "number": number, "option": option, "childcare": childcare}


T1, T2, T3 = "2026-05-01T10:00:00+09:00", "2026-05-02T10:00:00+09:00", "2026-05-03T10:00:00+09:00"
T4, T5 = "2026-06-02T09:00:00+09:00", "2026-06-03T09:00:00+09:00"  # after tama's deadline
EVENTS = [
    # E4 leaves 3 seats; B7 (2 people) fits, its child waits for childcare (A3 holds the slot).
    event(T1, "withdrawn", "E4", "tama:venue"),
    event(T1, "promoted", "B7", "tama:venue", "waitlisted"),
    # F1 held nothing: still an event, or C2's departure below would promote it.
    event(T2, "withdrawn", "F1", None),
    # A3 gives back its childcare slot: B7, holding the venue, gets it first.
    event(T3, "withdrawn", "A3", "tama:venue", "granted"),
    event(T3, "childcare_granted", "B7", "tama:venue", "granted"),
    # After tama's deadline nothing there is refilled; center is still open, nobody waits.
    event(T4, "withdrawn", "D9", "tama:online"),
    event(T5, "removed", "C2", "center:venue"),
]


@pytest.fixture
def audit() -> dict[str, Any]:
    return make_audit()


def write(tmp_path: Path, audit: dict[str, Any]) -> str:
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(audit, ensure_ascii=False), encoding="utf-8")
    return str(path)


def first_difference(audit: dict[str, Any]) -> str:
    differences = verify(audit)
    assert differences, "the verifier accepted a tampered file"
    return differences[0]


def test_it_accepts_a_correct_file(
    tmp_path: Path, audit: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(audit) == []
    assert main([write(tmp_path, audit)]) == 0
    assert capsys.readouterr().out == "OK: 8 results and 7 events verified\n"


def test_it_runs_as_a_module_with_no_django_to_import(
    tmp_path: Path, audit: dict[str, Any]
) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}

    # -S leaves out site-packages, where Django is installed: only the standard library remains.
    completed = subprocess.run(
        [sys.executable, "-S", "-m", "lottery.verify", write(tmp_path, audit)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert (completed.returncode, completed.stdout, completed.stderr) == (
        0,
        "OK: 8 results and 7 events verified\n",
        "",
    )


def test_importing_the_verifier_imports_nothing_from_django() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "import sys, lottery.verify; sys.exit('django' in sys.modules)"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        check=False,
    )

    assert completed.returncode == 0


def test_it_rejects_a_changed_outcome(
    tmp_path: Path, audit: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    index = next(i for i, r in enumerate(audit["results"]) if r["outcome"] == "won")
    number = audit["results"][index]["number"]
    audit["results"][index]["outcome"] = "waitlisted"

    assert main([write(tmp_path, audit)]) == 1
    assert capsys.readouterr().out == (
        f"results[{index}].outcome (entry {number}): "
        'file says "waitlisted", procedure gives "won"\n'
    )


def test_it_rejects_a_roll_with_an_entry_removed(audit: dict[str, Any]) -> None:
    del audit["roll"]["entries"][2]

    assert first_difference(audit).startswith(
        f'roll_hash: file says "{audit["roll_hash"]}", but the roll in the file hashes to "'
    )


def test_it_rejects_a_roll_with_an_entry_removed_even_with_its_hash_and_seed_redone(
    audit: dict[str, Any],
) -> None:
    removed = audit["roll"]["entries"].pop(2)["number"]
    audit["roll_hash"] = procedure.roll_hash(audit["roll"])
    assert first_difference(audit).startswith("seed: file says")

    audit["seed"] = procedure.seed(audit["roll_hash"], SECRET, "beacon 9001").hex()
    index = next(i for i, r in enumerate(audit["results"]) if r["number"] == removed)
    assert first_difference(audit) == f"results[{index}]: entry {removed} is not in the roll"


def test_it_rejects_a_missing_result(audit: dict[str, Any]) -> None:
    missing = audit["results"].pop(3)["number"]

    assert first_difference(audit) == f"entry {missing} is in the roll but missing from results"


def test_it_rejects_a_secret_that_does_not_match_the_commitment(audit: dict[str, Any]) -> None:
    audit["secret"] = "0" * 64

    assert first_difference(audit).startswith(
        f'commitment: file says "{audit["commitment"]}", but the SHA-256 of the secret is "'
    )


def test_it_rejects_other_public_randomness(audit: dict[str, Any]) -> None:
    audit["public_randomness"] = "beacon 9002"

    assert first_difference(audit).startswith(f'seed: file says "{audit["seed"]}"')


def test_it_ignores_white_space_around_the_public_randomness(audit: dict[str, Any]) -> None:
    audit["public_randomness"] = "  beacon 9001\n"

    assert verify(audit) == []


def test_it_rejects_a_changed_waitlist_position(audit: dict[str, Any]) -> None:
    index, result = next((i, r) for i, r in enumerate(audit["results"]) if r["waitlist"])
    option = next(iter(result["waitlist"]))
    result["waitlist"][option] += 1

    assert first_difference(audit).startswith(f"results[{index}].waitlist (entry ")


def test_it_rejects_a_changed_key(audit: dict[str, Any]) -> None:
    audit["results"][4]["key"] = "0" * 64

    assert first_difference(audit).startswith("results[4].key (entry ")


def test_it_rejects_results_that_are_not_listed_by_rank(audit: dict[str, Any]) -> None:
    results = audit["results"]
    results[0], results[1] = results[1], results[0]

    assert first_difference(audit) == (
        f'results[0].number (entry {results[0]["number"]}): file says "{results[0]["number"]}", '
        f'procedure gives "{results[1]["number"]}" (results are listed by rank)'
    )


def test_it_rejects_a_rank_written_as_true(audit: dict[str, Any]) -> None:
    audit["results"][0]["rank"] = True

    assert first_difference(audit).startswith("results[0].rank ")


def test_it_rejects_a_roll_whose_entries_are_not_sorted_by_number(audit: dict[str, Any]) -> None:
    entries = audit["roll"]["entries"]
    entries[0], entries[1] = entries[1], entries[0]

    assert first_difference(audit) == (
        "roll.entries[1]: entries must be sorted by number, each once; A3 follows B7"
    )


def test_it_rejects_a_roll_with_a_key_that_was_not_hashed(audit: dict[str, Any]) -> None:
    audit["roll"]["note"] = "added after the freeze"

    assert first_difference(audit) == 'roll: unexpected "note"'


def test_it_rejects_an_entry_that_breaks_the_published_rules(audit: dict[str, Any]) -> None:
    audit["roll"]["entries"][0]["heads"] = 6

    assert first_difference(audit) == (
        "roll.entries[0].heads: expected an integer from 1 to 5, found 6"
    )


def test_it_rejects_another_version_of_the_procedure(audit: dict[str, Any]) -> None:
    audit["roll"]["version"] = "seminar-lottery/2"

    assert first_difference(audit) == (
        'roll.version: file says "seminar-lottery/2", this verifier implements "seminar-lottery/1"'
    )


def test_it_rejects_an_event_about_an_entry_that_is_not_in_the_roll(audit: dict[str, Any]) -> None:
    audit["events"].append(event(T5, "promoted", "ZZ", None))

    assert first_difference(audit) == 'events[7]: entry "ZZ" is not in the roll'


# Events: replayed with §5 from the results, each withdrawal at its time.


def test_its_replay_ends_with_the_holdings_the_events_describe(audit: dict[str, Any]) -> None:

    holdings, events = replay(audit)

    assert events == EVENTS
    assert holdings == {
        "B7": ("tama:venue", "granted"),
        "G5": ("tama:online", "none"),
    }


def test_it_rejects_a_promotion_removed(audit: dict[str, Any]) -> None:
    del audit["events"][1]

    assert first_difference(audit) == (
        f"events[1] (entry F1): file says {json.dumps(EVENTS[2])}, "
        f"procedure gives {json.dumps(EVENTS[1])}"
    )


def test_it_rejects_a_promotion_added(audit: dict[str, Any]) -> None:
    audit["events"].insert(3, event(T2, "promoted", "H8", "tama:venue"))

    assert first_difference(audit).startswith("events[3] (entry H8): file says")


def test_it_rejects_two_events_swapped(audit: dict[str, Any]) -> None:
    events = audit["events"]
    events[3], events[4] = events[4], events[3]

    assert first_difference(audit).startswith("events[3] (entry B7): file says")


def test_it_rejects_a_promotion_after_the_deadline(audit: dict[str, Any]) -> None:
    # tama:venue has room after A3 left, but its deadline has passed at T4.
    audit["events"].insert(6, event(T4, "promoted", "H8", "tama:venue"))

    assert first_difference(audit) == (
        f"events[6] (entry H8): file says {json.dumps(audit['events'][6])}, "
        f"procedure gives {json.dumps(EVENTS[6])}"
    )


def test_it_rejects_a_withdrawal_removed_even_of_an_entry_that_held_nothing(
    audit: dict[str, Any],
) -> None:
    del audit["events"][2]  # F1, waiting for center:venue

    assert first_difference(audit) == (
        "events[6] (entry F1): the file ends, procedure gives "
        + json.dumps(event(T5, "promoted", "F1", "center:venue", "granted"))
    )


def test_it_rejects_a_withdrawal_moved_past_a_deadline(audit: dict[str, Any]) -> None:
    audit["events"][0]["time"] = audit["events"][1]["time"] = "2026-06-01T12:00:00+09:00"

    assert (
        first_difference(audit)
        == "events[2]: listed after a later event (events are in time order)"
    )


def test_it_rejects_events_without_the_promotion_deadlines(audit: dict[str, Any]) -> None:
    del audit["promotion_deadlines"]

    assert first_difference(audit).startswith("promotion_deadlines: expected an object")


def test_it_accepts_a_file_without_events(audit: dict[str, Any]) -> None:
    del audit["events"]

    assert verify(audit) == []


def test_it_says_how_many_more_differences_there_are(
    tmp_path: Path, audit: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    audit["secret"] = "0" * 64  # the commitment and the seed no longer match

    assert main([write(tmp_path, audit)]) == 1
    assert capsys.readouterr().out.rstrip().endswith("more differences)")


def test_it_exits_2_for_a_file_that_is_not_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.json"
    path.write_text('{"roll": ', encoding="utf-8")

    assert main([str(path)]) == 2
    assert capsys.readouterr().out.startswith(f"cannot read {path}: ")


def test_it_exits_2_for_a_missing_file(tmp_path: Path) -> None:
    assert main([str(tmp_path / "nowhere.json")]) == 2


def test_it_exits_2_for_json_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    path.write_text("[]", encoding="utf-8")

    assert main([str(path)]) == 2


def test_it_exits_2_without_exactly_one_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: python -m lottery.verify")


@PROPERTIES
@given(rolls())
def test_the_audit_file_of_any_draw_verifies(roll: procedure.Roll) -> None:
    hashed = procedure.roll_hash(roll)
    results = procedure.allocate(roll, procedure.seed(hashed, SECRET, "x"))
    audit = json.loads(json.dumps(procedure.audit_file(roll, SECRET, "x", results)))

    assert verify(audit) == []
    if results:
        tampered = copy.deepcopy(audit)
        tampered["results"][-1]["rank"] += 1
        assert verify(tampered) != []
