"""The fairness report: do the winners look like the applicants?

The 2011 US diversity visa lottery was voided when 90% of winners turned out to have applied in
the first two days: a bug had made submission time matter. Here each group's win rate is
compared with the pool's by a chi-square test of independence; a group structure whose p-value
is below ALERT_P is flagged for staff to look at. Party size is expected to matter (a large
party fits less often, by the published rules); submission week and municipality are not.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from registration import municipalities
from registration.models import Application

from .models import LotteryRun

ALERT_P = 0.01
MIN_EXPECTED = 5  # groups smaller than this are pooled into "other" for the test


@dataclass
class Row:
    group: str
    applications: int
    won: int

    @property
    def rate(self) -> float:
        return self.won / self.applications if self.applications else 0.0


@dataclass
class Breakdown:
    title: str | Promise
    rows: list[Row]
    p_value: float | None
    expected_to_differ: bool = False

    @property
    def alert(self) -> bool:
        return self.p_value is not None and self.p_value < ALERT_P and not self.expected_to_differ


def _breakdown(
    title: str | Promise, pairs: list[tuple[str, bool]], *, expected_to_differ: bool = False
) -> Breakdown:
    total, won = Counter[str](), Counter[str]()
    for group, is_win in pairs:
        total[group] += 1
        won[group] += is_win
    rows = [Row(g, total[g], won[g]) for g in sorted(total)]
    all_won = sum(won.values())
    rate = all_won / len(pairs) if pairs else 0
    # Pool groups too small for the test; the test needs two groups and some of each outcome.
    big = [r for r in rows if r.applications * min(rate, 1 - rate) >= MIN_EXPECTED]
    small = [r for r in rows if r not in big]
    tested = big + (
        [Row("other", sum(r.applications for r in small), sum(r.won for r in small))]
        if small
        else []
    )
    p_value = None
    if len(tested) >= 2 and 0 < all_won < len(pairs):
        # Imported here: SciPy is about 85 MiB that no web worker needs until staff open this.
        from scipy.stats import chi2_contingency

        table = [[r.won for r in tested], [r.applications - r.won for r in tested]]
        p_value = float(chi2_contingency(table).pvalue)
    return Breakdown(title, rows, p_value, expected_to_differ)


def fairness_report(run: LotteryRun) -> list[Breakdown]:
    rows = list(
        Application.objects.filter(lottery_result__run=run).values_list(
            "adults", "children", "created_at", "municipality", "lottery_result__outcome"
        )
    )
    opens = run.edition.registration_opens_at

    def week(created: dt.datetime) -> str:
        return f"{(created - opens).days // 7 + 1:02d}"

    groupings: list[tuple[str | Promise, Callable[[tuple], str], bool]] = [
        (_("Party size (people at the venue)"), lambda r: str(r[0] + r[1]), True),
        (_("Week of submission"), lambda r: week(r[2]), False),
        (_("Municipality"), lambda r: municipalities.label(r[3]), False),
    ]
    return [
        _breakdown(title, [(key(r), r[4] == "won") for r in rows], expected_to_differ=exp)
        for title, key, exp in groupings
    ]
