import datetime as dt

import pytest

from childcare.models import age_in_months, school_entry_date


@pytest.mark.parametrize(
    ("born", "on", "months"),
    [
        (dt.date(2025, 7, 31), dt.date(2026, 1, 31), 6),
        (dt.date(2025, 8, 1), dt.date(2026, 1, 31), 5),
        (dt.date(2025, 8, 31), dt.date(2026, 2, 28), 6),  # no 31 February: the month is complete
        (dt.date(2023, 1, 31), dt.date(2026, 1, 30), 35),
        (dt.date(2023, 1, 31), dt.date(2026, 1, 31), 36),
    ],
)
def test_it_counts_completed_months_of_age(born, on, months):
    assert age_in_months(born, on) == months


@pytest.mark.parametrize(
    ("born", "entry"),
    [
        (dt.date(2019, 4, 2), dt.date(2026, 4, 1)),  # 年長 in the 2025 school year
        (dt.date(2020, 4, 1), dt.date(2026, 4, 1)),  # 早生まれ: same school year
        (dt.date(2020, 4, 2), dt.date(2027, 4, 1)),
        (dt.date(2019, 4, 1), dt.date(2025, 4, 1)),  # already in first grade in 2026
    ],
)
def test_it_knows_when_a_child_starts_elementary_school(born, entry):
    assert school_entry_date(born) == entry
