"""The database itself guards the invariants, whatever code writes to it."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from tests.factories import ApplicationFactory, option

pytestmark = pytest.mark.django_db


def refused(**fields):  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        ApplicationFactory(**fields)
    return str(info.value)


def test_it_allows_a_valid_application(edition):
    ApplicationFactory(
        edition=edition,
        adults=2,
        children=3,
        choice_2=option(edition, "center:venue"),
        choice_3=option(edition, "tama:online"),
    )


@pytest.mark.parametrize(
    ("adults", "children", "constraint"),
    [
        (0, 0, "application_adults_1_to_2"),
        (3, 0, "application_adults_1_to_2"),
        (1, 4, "application_children_0_to_3"),
    ],
)
def test_it_refuses_a_party_outside_the_limits(edition, adults, children, constraint):
    assert constraint in refused(edition=edition, adults=adults, children=children)


def test_it_refuses_the_same_option_twice(edition):
    venue = option(edition, "tama:venue")
    assert "application_choice_2_distinct" in refused(
        edition=edition, choice_1=venue, choice_2=venue
    )
    assert "application_choice_3_distinct_and_after_2" in refused(
        edition=edition, choice_1=venue, choice_2=option(edition, "tama:online"), choice_3=venue
    )


def test_it_refuses_a_third_choice_without_a_second(edition):
    assert "application_choice_3_distinct_and_after_2" in refused(
        edition=edition, choice_3=option(edition, "tama:online")
    )


def test_an_email_may_hold_a_withdrawn_and_an_active_application(edition):
    ApplicationFactory(edition=edition, email="x@example.jp", status="withdrawn")
    ApplicationFactory(edition=edition, email="x@example.jp")
    assert "application_one_active_per_email_per_edition" in refused(
        edition=edition, email="X@example.jp"
    )
