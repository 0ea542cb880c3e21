"""The lottery procedure of LOTTERY.md, rule by rule on small hand-built rolls, then as properties
of random rolls. No database: the procedure is pure."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lottery.procedure import (
    VERSION,
    Change,
    Entry,
    Holding,
    Result,
    Roll,
    allocate,
    audit_file,
    canonical_json,
    childcare_waitlist,
    commitment,
    depart,
    draw_order,
    entry_key,
    holdings_from_results,
    new_secret,
    open_sessions,
    roll_hash,
    seed,
    settle,
)

SECRET = "5e" * 32
PROPERTIES = settings(
    deadline=None,
    max_examples=60,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the shared autouse fixtures do not matter here
    ],
)


def make_roll(
    capacities: dict[str, int],
    entries: list[Entry],
    childcare: dict[str, dict[str, int]] | None = None,
) -> Roll:
    options = {}
    for name, capacity in capacities.items():
        session, kind = name.split(":")
        unit = "heads" if kind == "venue" else "applications"
        options[name] = {"session": session, "unit": unit, "capacity": capacity}
    return {
        "version": VERSION,
        "edition": "2026",
        "options": options,
        "childcare": childcare or {},
        "entries": sorted(entries, key=lambda entry: entry["number"]),
    }


def make_entry(
    number: str,
    *choices: str,
    heads: int = 1,
    childcare: dict[str, dict[str, int]] | None = None,
    fallback: str = "hall",
    weight: int = 1,
) -> Entry:
    return {
        "number": number,
        "choices": list(choices),
        "heads": heads,
        "childcare": childcare or {},
        "fallback": fallback,
        "weight": weight,
    }


def seed_drawing(roll: Roll, order: list[str]) -> bytes:
    """A seed (from some public randomness) whose draw order is `order`: the hand-built rolls
    below are small enough for this search to take a few milliseconds."""
    for attempt in range(100_000):
        candidate = seed(roll_hash(roll), SECRET, str(attempt))
        if [entry["number"] for entry, _ in draw_order(roll["entries"], candidate)] == order:
            return candidate
    raise AssertionError(f"no public randomness found that draws {order}")


def draw(roll: Roll, order: list[str]) -> dict[str, Result]:
    return {result["number"]: result for result in allocate(roll, seed_drawing(roll, order))}


def won(result: Result) -> tuple[str | None, int | None, str]:
    return result["option"], result["round"], result["childcare"]


# §2 and §3: the published formulas, recomputed here with hashlib.


def test_canonical_json_sorts_keys_keeps_non_ascii_text_and_has_no_spaces() -> None:
    assert canonical_json({"b": [1, 2], "a": "多摩"}) == '{"a":"多摩","b":[1,2]}'.encode()


def test_the_roll_hash_is_the_sha256_of_the_canonical_json_of_its_five_keys() -> None:
    roll = make_roll({"tama:venue": 10}, [make_entry("K7Q4M2XD", "tama:venue", heads=2)])
    text = (
        '{"childcare":{},"edition":"2026","entries":[{"childcare":{},"choices":["tama:venue"],'
        '"fallback":"hall","heads":2,"number":"K7Q4M2XD","weight":1}],"options":{"tama:venue":'
        '{"capacity":10,"session":"tama","unit":"heads"}},"version":"seminar-lottery/1"}'
    )

    assert roll_hash(roll) == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert roll_hash({**roll, "secret": "not hashed"}) == roll_hash(roll)


def test_the_roll_hash_changes_when_any_entry_changes() -> None:
    roll = make_roll({"tama:venue": 10}, [make_entry("A", "tama:venue", heads=2)])
    changed = make_roll({"tama:venue": 10}, [make_entry("A", "tama:venue", heads=3)])

    assert roll_hash(changed) != roll_hash(roll)


def test_the_commitment_is_the_sha256_of_the_secret_written_in_hex() -> None:
    assert commitment(SECRET) == hashlib.sha256(SECRET.encode("utf-8")).hexdigest()


def test_a_new_secret_is_32_random_bytes_in_lowercase_hex() -> None:
    first, second = new_secret(), new_secret()

    assert len(first) == 64
    assert first == first.lower()
    assert bytes.fromhex(first).hex() == first
    assert first != second


def test_the_seed_follows_the_published_formula_with_the_randomness_stripped() -> None:
    expected = hashlib.sha256(
        f"seminar-lottery/1\n{'ab' * 32}\n{SECRET}\nround 4711".encode()
    ).digest()

    assert seed("ab" * 32, SECRET, "  round 4711\n") == expected
    assert seed("ab" * 32, SECRET, "round 4712") != expected


def test_the_key_is_the_sha256_of_the_seed_bytes_and_the_ticket() -> None:
    seed_bytes = seed("ab" * 32, SECRET, "")

    assert entry_key(seed_bytes, "K7Q4M2XD", 1) == (
        hashlib.sha256(seed_bytes + b"K7Q4M2XD#1").hexdigest()
    )


def test_a_weight_above_one_gives_more_tickets_and_keeps_the_smallest() -> None:
    seed_bytes = seed("ab" * 32, SECRET, "")
    tickets = [hashlib.sha256(seed_bytes + f"K7Q4M2XD#{j}".encode()).hexdigest() for j in (1, 2, 3)]

    assert entry_key(seed_bytes, "K7Q4M2XD", 3) == min(tickets)
    assert entry_key(seed_bytes, "K7Q4M2XD", 3) <= entry_key(seed_bytes, "K7Q4M2XD", 1)


def test_results_are_in_draw_order_by_key_and_ranked_from_one() -> None:
    entries = [make_entry(f"N{i}", "tama:venue") for i in range(20)]
    roll = make_roll({"tama:venue": 5}, entries)
    seed_bytes = seed(roll_hash(roll), SECRET, "")

    results = allocate(roll, seed_bytes)

    assert [result["rank"] for result in results] == list(range(1, 21))
    assert [result["key"] for result in results] == sorted(
        entry_key(seed_bytes, entry["number"], 1) for entry in entries
    )
    assert all(result["key"] == entry_key(seed_bytes, result["number"], 1) for result in results)


def test_results_have_exactly_the_published_keys() -> None:
    roll = make_roll({"tama:venue": 1}, [make_entry("A", "tama:venue")])

    (result,) = allocate(roll, seed(roll_hash(roll), SECRET, ""))

    assert set(result) == {
        "number", "key", "rank", "outcome", "option", "round", "childcare", "waitlist"
    }  # fmt: skip


# §4: allocation


def test_it_skips_a_party_that_does_not_fit_and_seats_a_later_smaller_one() -> None:
    roll = make_roll(
        {"tama:venue": 4},
        [
            make_entry("A", "tama:venue", heads=3),
            make_entry("B", "tama:venue", heads=3),
            make_entry("C", "tama:venue", heads=1),
        ],
    )

    results = draw(roll, ["A", "B", "C"])

    assert won(results["A"]) == ("tama:venue", 1, "none")
    assert results["B"]["outcome"] == "waitlisted"
    assert results["B"]["waitlist"] == {"tama:venue": 1}
    assert won(results["C"]) == ("tama:venue", 1, "none")


def test_a_party_fits_when_it_takes_exactly_the_seats_left() -> None:
    roll = make_roll({"tama:venue": 5}, [make_entry("A", "tama:venue", heads=5)])

    assert draw(roll, ["A"])["A"]["outcome"] == "won"


def test_it_grants_childcare_when_every_band_fits_and_takes_the_slots() -> None:
    roll = make_roll(
        {"tama:venue": 20, "tama:online": 5},
        [
            make_entry("A", "tama:venue", heads=4, childcare={"tama": {"0-2": 1, "3-5": 2}}),
            make_entry(
                "B",
                "tama:venue",
                "tama:online",
                heads=2,
                childcare={"tama": {"3-5": 1}},
                fallback="skip",
            ),
        ],  # fmt: skip
        childcare={"tama": {"0-2": 1, "3-5": 2}},
    )

    results = draw(roll, ["A", "B"])

    assert won(results["A"]) == ("tama:venue", 1, "granted")
    assert won(results["B"]) == ("tama:online", 2, "none")  # A took both 3-5 slots


def test_it_does_not_grant_childcare_when_one_band_is_full_and_takes_no_slot_then() -> None:
    roll = make_roll(
        {"tama:venue": 20},
        [
            make_entry("A", "tama:venue", heads=2, childcare={"tama": {"0-2": 1}}),
            make_entry("B", "tama:venue", heads=3, childcare={"tama": {"0-2": 1, "3-5": 1}}),
            make_entry("C", "tama:venue", heads=3, childcare={"tama": {"3-5": 2}}, fallback="skip"),
        ],
        childcare={"tama": {"0-2": 1, "3-5": 2}},
    )

    results = draw(roll, ["A", "B", "C"])

    assert won(results["A"]) == ("tama:venue", 1, "granted")
    assert won(results["B"]) == ("tama:venue", 1, "waitlisted")
    assert won(results["C"]) == ("tama:venue", 1, "granted")  # B left the 3-5 slots untouched


def test_a_hall_party_takes_its_seats_while_it_waits_for_childcare() -> None:
    roll = make_roll(
        {"tama:venue": 5},
        [
            make_entry("A", "tama:venue", heads=3, childcare={"tama": {"0-2": 1}}),
            make_entry("B", "tama:venue", heads=3),
        ],
        childcare={"tama": {"0-2": 0}},
    )

    results = draw(roll, ["A", "B"])

    assert won(results["A"]) == ("tama:venue", 1, "waitlisted")
    assert results["B"]["outcome"] == "waitlisted"


def test_a_skip_party_does_not_take_the_venue_when_its_children_do_not_fit() -> None:
    roll = make_roll(
        {"tama:venue": 20, "center:venue": 20},
        [
            make_entry(
                "A",
                "tama:venue",
                "center:venue",
                heads=2,
                childcare={"tama": {"0-2": 1}, "center": {"0-2": 1}},
                fallback="skip",
            ),
        ],  # fmt: skip
        childcare={"tama": {"0-2": 0}, "center": {"0-2": 1}},
    )

    result = draw(roll, ["A"])["A"]

    assert won(result) == ("center:venue", 2, "granted")
    assert result["waitlist"] == {"tama:venue": 1}


def test_a_party_with_no_children_for_that_session_needs_no_childcare() -> None:
    roll = make_roll(
        {"tama:venue": 20},
        [make_entry("A", "tama:venue", childcare={"center": {"0-2": 1}}, fallback="skip")],
    )

    assert won(draw(roll, ["A"])["A"]) == ("tama:venue", 1, "none")


def test_online_counts_one_per_application_whatever_the_party_size() -> None:
    roll = make_roll(
        {"tama:online": 2},
        [
            make_entry("A", "tama:online", heads=5),
            make_entry("B", "tama:online", heads=5),
            make_entry("C", "tama:online", heads=1),
        ],
    )

    results = draw(roll, ["A", "B", "C"])

    assert [results[n]["outcome"] for n in "ABC"] == ["won", "won", "waitlisted"]


def test_an_online_holder_has_no_childcare_even_with_children_that_day() -> None:
    roll = make_roll(
        {"tama:online": 2, "tama:venue": 5},
        [
            make_entry("A", "tama:online", childcare={"tama": {"0-2": 1}}),
            make_entry("B", "tama:venue", childcare={"tama": {"0-2": 1}}, fallback="skip"),
        ],
        childcare={"tama": {"0-2": 1}},
    )

    results = draw(roll, ["A", "B"])

    assert won(results["A"]) == ("tama:online", 1, "none")
    assert won(results["B"]) == ("tama:venue", 1, "granted")  # A took no slot


def test_everyones_first_choice_comes_before_anyones_second_choice() -> None:
    roll = make_roll(
        {"tama:venue": 2, "center:venue": 0},
        [
            make_entry("A", "center:venue", "tama:venue", heads=2),
            make_entry("B", "tama:venue", heads=2),
        ],
    )

    results = draw(roll, ["A", "B"])

    assert results["A"]["outcome"] == "waitlisted"
    assert won(results["B"]) == ("tama:venue", 1, "none")


def test_it_gives_a_second_choice_in_round_two() -> None:
    roll = make_roll(
        {"tama:venue": 0, "tama:online": 1}, [make_entry("A", "tama:venue", "tama:online")]
    )

    result = draw(roll, ["A"])["A"]

    assert won(result) == ("tama:online", 2, "none")
    assert result["waitlist"] == {"tama:venue": 1}


def test_it_gives_a_third_choice_in_round_three() -> None:
    roll = make_roll(
        {"tama:venue": 0, "center:venue": 0, "tama:online": 1},
        [make_entry("A", "tama:venue", "center:venue", "tama:online")],
    )

    result = draw(roll, ["A"])["A"]

    assert won(result) == ("tama:online", 3, "none")
    assert result["waitlist"] == {"tama:venue": 1, "center:venue": 1}


def test_an_entry_wins_at_most_one_option() -> None:
    roll = make_roll(
        {"tama:venue": 2, "center:venue": 2, "tama:online": 1},
        [
            make_entry("A", "tama:venue", "center:venue", "tama:online", heads=2),
            make_entry("B", "center:venue", heads=2),
            make_entry("C", "tama:online"),
        ],
    )

    results = draw(roll, ["A", "B", "C"])

    assert won(results["A"]) == ("tama:venue", 1, "none")
    assert won(results["B"]) == ("center:venue", 1, "none")
    assert won(results["C"]) == ("tama:online", 1, "none")


def test_waitlists_include_holders_of_a_lower_choice_and_exclude_holders_of_a_higher_one() -> None:
    roll = make_roll(
        {"tama:venue": 1, "center:venue": 1, "tama:online": 2},
        [
            make_entry("A", "tama:venue"),
            make_entry("B", "center:venue", "tama:online"),
            make_entry("C", "tama:venue", "center:venue", "tama:online"),
            make_entry("D", "center:venue", "tama:venue"),
            make_entry("E", "tama:online", "center:venue"),
        ],
    )

    results = draw(roll, ["A", "B", "C", "D", "E"])

    assert won(results["C"]) == ("tama:online", 3, "none")
    assert results["C"]["waitlist"] == {"tama:venue": 1, "center:venue": 1}
    assert results["D"]["waitlist"] == {"center:venue": 2, "tama:venue": 2}
    assert won(results["E"]) == ("tama:online", 1, "none")
    assert results["E"]["waitlist"] == {}
    assert results["A"]["waitlist"] == results["B"]["waitlist"] == {}


def test_the_childcare_waitlist_lists_hall_parties_without_childcare_in_draw_order() -> None:
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"tama:venue": 20, "center:venue": 20},
        [
            make_entry("A", "tama:venue", childcare=children),
            make_entry("B", "tama:venue", childcare=children),
            make_entry("C", "tama:venue", childcare=children, fallback="skip"),
            make_entry("D", "tama:venue", childcare=children),
        ],
        childcare={"tama": {"0-2": 1}},
    )
    results = list(draw(roll, ["D", "A", "C", "B"]).values())
    random.Random(1).shuffle(results)

    assert childcare_waitlist(roll, results, "tama") == ["A", "B"]
    assert childcare_waitlist(roll, results, "center") == []


# §5: withdrawals and promotions


def sessions_of(roll: Roll) -> set[str]:
    return {spec["session"] for spec in roll["options"].values()}


def depart_after(
    roll: Roll,
    results: dict[str, Result],
    leaving: list[str],
    open_sessions: set[str] | None = None,
    kind: Any = "withdrawn",
) -> tuple[dict[str, Holding], list[Change]]:
    """Each of `leaving` departs in turn after the draw, each followed by its settling."""
    order = sorted(results, key=lambda number: results[number]["rank"])
    holdings = holdings_from_results(results.values())
    gone: set[str] = set()
    changes: list[Change] = []
    for number in leaving:
        opened = sessions_of(roll) if open_sessions is None else open_sessions
        holdings, settled = depart(roll, order, holdings, gone, number, kind, opened)
        gone.add(number)
        changes += settled
    return holdings, changes


def test_a_withdrawal_frees_seats_for_the_first_on_the_waitlist_that_fits() -> None:
    roll = make_roll(
        {"tama:venue": 5},
        [
            make_entry("A", "tama:venue", heads=3),
            make_entry("B", "tama:venue", heads=4),
            make_entry("C", "tama:venue", heads=2),
            make_entry("D", "tama:venue", heads=1),
        ],
    )
    results = draw(roll, ["A", "B", "C", "D"])

    holdings, changes = depart_after(roll, results, ["C"])

    assert changes == [
        Change("withdrawn", "C", "tama:venue", "none"),
        Change("promoted", "D", "tama:venue", "none"),  # B, with 4 heads, does not fit in 2
    ]
    assert holdings == {"A": ("tama:venue", "none"), "D": ("tama:venue", "none")}


def test_a_promoted_entry_releases_its_lower_choice_and_that_option_is_refilled() -> None:
    roll = make_roll(
        {"tama:venue": 1, "tama:online": 1, "center:venue": 0},
        [
            make_entry("A", "tama:venue"),
            make_entry("B", "tama:venue", "tama:online"),
            make_entry("C", "center:venue", "tama:online"),
        ],
    )
    results = draw(roll, ["A", "B", "C"])
    assert won(results["B"]) == ("tama:online", 2, "none")

    holdings, changes = depart_after(roll, results, ["A"])

    assert changes == [
        Change("withdrawn", "A", "tama:venue", "none"),
        Change("released", "B", "tama:online", "none"),
        Change("promoted", "B", "tama:venue", "none"),
        Change("promoted", "C", "tama:online", "none"),
    ]
    assert holdings == {"B": ("tama:venue", "none"), "C": ("tama:online", "none")}


def test_freed_childcare_slots_go_first_to_the_childcare_waitlist_in_draw_order() -> None:
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"tama:venue": 20},
        [
            make_entry("A", "tama:venue", childcare=children),
            make_entry("B", "tama:venue", childcare=children, fallback="skip"),
            make_entry("C", "tama:venue", childcare=children),
        ],
        childcare={"tama": {"0-2": 1}},
    )
    results = draw(roll, ["A", "B", "C"])
    assert results["B"]["outcome"] == "waitlisted"

    holdings, changes = depart_after(roll, results, ["A"])

    assert changes == [
        Change("withdrawn", "A", "tama:venue", "granted"),
        Change("childcare_granted", "C", "tama:venue", "granted"),
    ]
    assert "B" not in holdings


def test_a_holder_waiting_for_childcare_gets_slots_a_promotion_releases_before_anyone_else() -> (
    None
):
    """The auditor's case: Y is promoted to its first choice and releases the venue with its
    childcare slot. D, who holds that venue and waits for childcare, must get the slot before E
    (later in draw order, waiting for the venue) is promoted with it: after each move the
    settling starts again at step 1."""
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"center:venue": 1, "center:online": 0, "tama:venue": 10},
        [
            make_entry("W", "center:venue"),
            make_entry("Y", "center:venue", "tama:venue", childcare=children),
            make_entry("D", "center:online", "tama:venue", childcare=children, fallback="hall"),
            make_entry("E", "center:online", "tama:venue", childcare=children, fallback="skip"),
        ],
        childcare={"tama": {"0-2": 1}},
    )
    results = draw(roll, ["W", "Y", "D", "E"])
    assert won(results["Y"]) == ("tama:venue", 2, "granted")
    assert won(results["D"]) == ("tama:venue", 2, "waitlisted")
    assert results["E"]["outcome"] == "waitlisted"

    holdings, changes = depart_after(roll, results, ["W"])

    assert changes == [
        Change("withdrawn", "W", "center:venue", "none"),
        Change("released", "Y", "tama:venue", "granted"),
        Change("promoted", "Y", "center:venue", "none"),
        Change("childcare_granted", "D", "tama:venue", "granted"),
    ]
    assert holdings == {"Y": ("center:venue", "none"), "D": ("tama:venue", "granted")}


def test_a_skip_party_gets_the_venue_once_childcare_slots_return() -> None:
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"tama:venue": 20},
        [
            make_entry("A", "tama:venue", childcare=children),
            make_entry("B", "tama:venue", childcare=children, fallback="skip"),
        ],
        childcare={"tama": {"0-2": 1}},
    )
    results = draw(roll, ["A", "B"])

    holdings, _ = depart_after(roll, results, ["A"])

    assert holdings == {"B": ("tama:venue", "granted")}


def test_a_duplicate_removed_after_the_draw_frees_its_place_and_is_never_promoted() -> None:
    roll = make_roll(
        {"tama:venue": 1},
        [
            make_entry("A", "tama:venue"),
            make_entry("B", "tama:venue"),
            make_entry("C", "tama:venue"),
        ],
    )
    results = draw(roll, ["A", "B", "C"])

    holdings, changes = depart_after(roll, results, ["B", "A"], kind="removed")

    assert holdings == {"C": ("tama:venue", "none")}
    assert changes == [
        Change("removed", "B", None, "none"),  # held nothing: still an event
        Change("removed", "A", "tama:venue", "none"),
        Change("promoted", "C", "tama:venue", "none"),
    ]


def test_settling_changes_nothing_right_after_the_draw() -> None:
    children = {"tama": {"0-2": 1}}
    roll = make_roll(
        {"tama:venue": 4, "tama:online": 1},
        [
            make_entry("A", "tama:venue", heads=3, childcare=children),
            make_entry("B", "tama:venue", "tama:online", heads=2, childcare=children),
            make_entry("C", "tama:venue", heads=1, childcare=children),
        ],
        childcare={"tama": {"0-2": 1}},
    )
    results = draw(roll, ["A", "B", "C"])
    order = sorted(results, key=lambda number: results[number]["rank"])
    holdings = holdings_from_results(results.values())

    settled = settle(roll, order, holdings, set(), sessions_of(roll))

    assert settled.changes == []
    assert settled.holdings == holdings


def test_it_does_not_refill_a_session_past_its_promotion_deadline() -> None:
    roll = make_roll(
        {"tama:venue": 1, "center:venue": 1},
        [
            make_entry("A", "tama:venue"),
            make_entry("B", "tama:venue"),
            make_entry("C", "center:venue"),
            make_entry("D", "center:venue"),
        ],
    )
    results = draw(roll, ["A", "B", "C", "D"])

    holdings, changes = depart_after(roll, results, ["A", "C"], open_sessions={"center"})

    assert holdings == {"D": ("center:venue", "none")}
    assert Change("promoted", "B", "tama:venue", "none") not in changes


def test_a_promotion_deadline_is_exclusive() -> None:
    deadlines = {"tama": "2027-01-17T12:00:00+09:00", "center": "2027-01-24T12:00:00+09:00"}

    assert open_sessions(deadlines, "2027-01-17T11:59:59+09:00") == {"tama", "center"}
    assert open_sessions(deadlines, "2027-01-17T12:00:00+09:00") == {"center"}
    assert open_sessions(deadlines, "2027-01-17T03:00:00+00:00") == {"center"}  # same instant
    assert open_sessions(deadlines, "2027-01-24T12:00:01+09:00") == set()


def test_settling_does_not_depend_on_the_order_of_the_holdings_given() -> None:
    roll = make_roll(
        {"tama:venue": 2, "tama:online": 2},
        [make_entry(n, "tama:venue", "tama:online") for n in "ABCDEF"],
    )
    results = draw(roll, list("FEDCBA"))
    order = sorted(results, key=lambda number: results[number]["rank"])
    holdings = {n: h for n, h in holdings_from_results(results.values()).items() if n != "F"}
    sessions = sessions_of(roll)

    forward = settle(roll, order, holdings, {"F", "D"} - set(holdings), sessions)
    backward = settle(roll, order, dict(reversed(holdings.items())), {"F"}, sessions)

    assert forward == backward


def test_settling_refuses_an_order_that_is_not_the_whole_roll() -> None:
    roll = make_roll(
        {"tama:venue": 1}, [make_entry("A", "tama:venue"), make_entry("B", "tama:venue")]
    )

    with pytest.raises(ValueError, match="every entry"):
        settle(roll, ["A"], {}, set(), {"tama"})


def test_settling_refuses_a_holding_that_is_not_one_of_the_entrys_choices() -> None:
    roll = make_roll({"tama:venue": 1, "tama:online": 1}, [make_entry("A", "tama:venue")])

    with pytest.raises(ValueError, match="not one of its choices"):
        settle(roll, ["A"], {"A": Holding("tama:online", "none")}, set(), {"tama"})
    with pytest.raises(ValueError, match="not one of its choices"):
        settle(roll, ["A"], {"Z": Holding("tama:venue", "none")}, set(), {"tama"})
    with pytest.raises(ValueError, match="left the roll"):
        settle(roll, ["A"], {"A": Holding("tama:venue", "none")}, {"A"}, {"tama"})


def test_an_entry_departs_once() -> None:
    roll = make_roll({"tama:venue": 1}, [make_entry("A", "tama:venue")])

    with pytest.raises(ValueError, match="still in it"):
        depart(roll, ["A"], {}, {"A"}, "A", "withdrawn", {"tama"})
    with pytest.raises(ValueError, match="still in it"):
        depart(roll, ["A"], {}, set(), "Z", "withdrawn", {"tama"})


# §6: the audit file


def test_the_audit_file_holds_the_roll_hash_commitment_seed_and_results_by_rank() -> None:
    roll = make_roll(
        {"tama:venue": 1}, [make_entry("A", "tama:venue"), make_entry("B", "tama:venue")]
    )
    seed_bytes = seed(roll_hash(roll), SECRET, " beacon 42 ")
    results = allocate(roll, seed_bytes)
    event = {
        "time": "2026-05-01T10:00:00+09:00",
        "kind": "withdrawn",
        "number": "A",
        "option": None,
    }

    audit = audit_file(roll, SECRET, " beacon 42 ", list(reversed(results)), [event])

    assert audit["roll"] == roll
    assert audit["roll_hash"] == roll_hash(roll)
    assert audit["commitment"] == commitment(SECRET)
    assert audit["seed"] == seed_bytes.hex()
    assert audit["results"] == results
    assert audit["events"] == [event]
    assert json.loads(json.dumps(audit)) == audit


# Properties of random rolls

SESSIONS = ("tama", "center", "west")
BANDS = ("0-2", "3-5")


@st.composite
def rolls(pick: st.DrawFn, min_entries: int = 0, max_entries: int = 200) -> Roll:
    """Options, capacities and childcare slots are drawn by Hypothesis (and shrunk on failure);
    the entries come from a seeded `random.Random`, which is much faster for 200 entries."""
    names = [f"{session}:{kind}" for session in SESSIONS for kind in ("venue", "online")]
    capacities = {
        name: pick(st.integers(0, 25))
        for name in pick(st.lists(st.sampled_from(names), min_size=1, unique=True))
    }
    childcare = {session: {band: pick(st.integers(0, 6)) for band in BANDS} for session in SESSIONS}
    size = pick(st.integers(min_entries, max_entries))
    rng = random.Random(pick(st.integers(0, 2**32 - 1)))
    entries = []
    for index in range(size):
        choices = rng.sample(sorted(capacities), rng.randint(1, min(3, len(capacities))))
        children = {
            session: {band: rng.randint(1, 2) for band in rng.sample(BANDS, rng.randint(1, 2))}
            for session in sorted({choice.split(":")[0] for choice in choices})
            if rng.random() < 0.5
        }
        entries.append(
            make_entry(
                f"E{index:04d}",
                *choices,
                heads=rng.randint(1, 5),
                childcare=children,
                fallback=rng.choice(["hall", "skip"]),
                weight=rng.choice([1, 1, 1, 2, 3]),
            )
        )
    return make_roll(capacities, entries, childcare)


def usage(roll: Roll, holdings: dict[str, Holding]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Seats per option and childcare slots per session and band, counted from scratch."""
    entries = {entry["number"]: entry for entry in roll["entries"]}
    seats: Counter[str] = Counter()
    slots: dict[str, Counter[str]] = defaultdict(Counter)
    for number, (option, childcare) in holdings.items():
        spec = roll["options"][option]
        seats[option] += entries[number]["heads"] if spec["unit"] == "heads" else 1
        if childcare == "granted":
            slots[spec["session"]].update(entries[number]["childcare"][spec["session"]])
    return seats, slots


def fits(roll: Roll, entry: Entry, option: str, holdings: dict[str, Holding]) -> bool:
    """§4 written again, independently of the module under test."""
    seats, slots = usage(roll, holdings)
    spec = roll["options"][option]
    left = spec["capacity"] - seats[option]
    if spec["unit"] == "applications":
        return left >= 1
    children = entry["childcare"].get(spec["session"], {})
    children_fit = all(
        roll["childcare"].get(spec["session"], {}).get(band, 0) - slots[spec["session"]][band] >= n
        for band, n in children.items()
    )
    return left >= entry["heads"] and (children_fit or entry["fallback"] == "hall")


def assert_valid(roll: Roll, holdings: dict[str, Holding], gone: set[str]) -> None:
    """Within capacity; every holder holds one of its choices with the right childcare status."""
    entries = {entry["number"]: entry for entry in roll["entries"]}
    seats, slots = usage(roll, holdings)
    for option, spec in roll["options"].items():
        assert seats[option] <= spec["capacity"], option
    for session, bands in slots.items():
        for band, used in bands.items():
            assert used <= roll["childcare"].get(session, {}).get(band, 0), (session, band)
    for number, (option, childcare) in holdings.items():
        entry = entries[number]
        spec = roll["options"][option]
        assert number not in gone
        assert option in entry["choices"]
        if spec["unit"] == "applications" or not entry["childcare"].get(spec["session"]):
            assert childcare == "none"
        else:
            assert childcare == "granted" or (childcare, entry["fallback"]) == (
                "waitlisted",
                "hall",
            )


def assert_nobody_left_out(roll: Roll, holdings: dict[str, Holding], gone: set[str]) -> None:
    """No entry could take a choice it ranked above what it holds; no childcare could be given."""
    for entry in roll["entries"]:
        if entry["number"] in gone:
            continue
        holding = holdings.get(entry["number"])
        better = (
            entry["choices"][: entry["choices"].index(holding.option)]
            if holding
            else entry["choices"]
        )
        for option in better:
            assert not fits(roll, entry, option, holdings), (entry["number"], option)
        if holding and holding.childcare == "waitlisted":
            granted = {**holdings, entry["number"]: Holding(holding.option, "granted")}
            seats, slots = usage(roll, granted)
            session = roll["options"][holding.option]["session"]
            assert any(
                used > roll["childcare"].get(session, {}).get(band, 0)
                for band, used in slots[session].items()
            )


def drawn(roll: Roll, randomness: str = "") -> list[Result]:
    return allocate(roll, seed(roll_hash(roll), SECRET, randomness))


@PROPERTIES
@given(rolls())
def test_capacities_and_childcare_slots_are_never_exceeded(roll: Roll) -> None:
    results = drawn(roll)

    assert_valid(roll, holdings_from_results(results), gone=set())


@PROPERTIES
@given(rolls())
def test_there_is_exactly_one_result_per_entry(roll: Roll) -> None:
    results = drawn(roll)

    assert sorted(result["number"] for result in results) == [e["number"] for e in roll["entries"]]
    assert [result["rank"] for result in results] == list(range(1, len(results) + 1))
    for result in results:
        assert (result["outcome"] == "won") == (result["option"] is not None)


@PROPERTIES
@given(rolls(), st.randoms(use_true_random=False))
def test_the_order_of_entries_in_the_input_does_not_change_the_result(
    roll: Roll, shuffler: random.Random
) -> None:
    seed_bytes = seed(roll_hash(roll), SECRET, "")
    shuffled: Roll = {**roll, "entries": shuffler.sample(roll["entries"], len(roll["entries"]))}

    assert allocate(shuffled, seed_bytes) == allocate(roll, seed_bytes)


@PROPERTIES
@given(rolls(min_entries=12))
def test_other_public_randomness_gives_another_draw_order(roll: Roll) -> None:
    first = [result["number"] for result in drawn(roll, "beacon round 1")]
    second = [result["number"] for result in drawn(roll, "beacon round 2")]

    assert first != second


@PROPERTIES
@given(rolls())
def test_after_the_draw_nobody_waits_for_a_place_they_would_fit_in(roll: Roll) -> None:
    results = drawn(roll)
    holdings = holdings_from_results(results)

    assert_nobody_left_out(roll, holdings, gone=set())
    order = [r["number"] for r in results]
    assert settle(roll, order, holdings, set(), sessions_of(roll)).changes == []


@PROPERTIES
@given(rolls(min_entries=1, max_entries=60), st.data())
def test_withdrawals_and_deadlines_keep_every_rule_after_each_settling(
    roll: Roll, data: st.DataObject
) -> None:
    """Random withdrawals (holders, waiting entries), each with its own set of open sessions
    (deadlines passing): after each settling no capacity or band is exceeded, every holder holds
    one choice whole (a party is never split: its heads are counted together), entries only move
    up their choices, nothing moves in a closed session, and settling again changes nothing."""
    results = drawn(roll)
    order = [result["number"] for result in results]
    holdings = holdings_from_results(results)
    gone: set[str] = set()
    opened = set(SESSIONS)

    for _ in range(data.draw(st.integers(1, 8))):
        still = [n for n in order if n not in gone]
        if not still:
            break
        # Mostly holders withdraw (that frees places), sometimes an entry on a waitlist.
        holders = [n for n in still if n in holdings]
        pool = holders if holders and data.draw(st.integers(0, 3)) else still
        number = data.draw(st.sampled_from(pool))
        if data.draw(st.booleans()):  # a deadline passes; deadlines never come back
            opened -= {data.draw(st.sampled_from(SESSIONS))}
        before = holdings
        holdings, changes = depart(roll, order, before, gone, number, "withdrawn", opened)
        gone.add(number)

        assert_valid(roll, holdings, gone)
        if opened == set(SESSIONS):
            assert_nobody_left_out(roll, holdings, gone)
        for held, (option, _) in holdings.items():
            if held in before:  # nobody is moved to a choice they ranked lower
                choices = next(e["choices"] for e in roll["entries"] if e["number"] == held)
                assert choices.index(option) <= choices.index(before[held].option)
        assert changes[0].kind == "withdrawn" and changes[0].number == number
        for change in changes[1:]:
            assert change.kind in ("released", "promoted", "childcare_granted")
            if change.kind != "released":
                assert roll["options"][change.option]["session"] in opened
        replayed = dict(before)
        for change in changes:
            if change.kind in ("withdrawn", "released"):
                assert replayed.pop(change.number, None) == (
                    Holding(change.option, change.childcare) if change.option else None
                )
            else:
                replayed[change.number] = Holding(change.option, change.childcare)
        assert replayed == holdings
        # Settling is idempotent: the edition is settled after each withdrawal.
        assert settle(roll, order, holdings, gone, opened) == (holdings, [])
