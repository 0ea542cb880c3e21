"""Races the database must settle, on PostgreSQL with real threads."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict

from registration.forms import ApplicationFormGroup
from registration.models import Application, AuditEvent, OutboxEmail
from registration.services import application_submit
from tests.concurrency import at_once

from .helpers import form_data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _input(edition, **overrides):  # type: ignore[no-untyped-def]
    data = QueryDict(mutable=True)
    for k, v in form_data(edition, **overrides).items():
        data.setlist(k, v if isinstance(v, list) else [str(v)])
    group = ApplicationFormGroup(data, edition=edition)
    assert group.is_valid()
    return group.to_input()


def test_the_same_email_submitted_at_once_from_eight_phones_makes_one_application(edition):
    assert connection.vendor == "postgresql"
    data = [_input(edition, family_name=f"山田{i}") for i in range(8)]
    _, errors = at_once(lambda d: application_submit(edition=edition, data=d, language="ja"), data)
    assert not errors, errors
    assert Application.objects.count() == 1
    # The owner is told once, not seven times; every attempt is in the history.
    kinds = sorted(OutboxEmail.objects.values_list("kind", flat=True))
    assert kinds == ["already_applied", "receipt"]
    assert AuditEvent.objects.filter(action="application.second_attempt").count() == 7


def test_the_database_refuses_a_second_active_application_for_an_email(edition):
    from django.db import IntegrityError

    from tests.factories import ApplicationFactory

    ApplicationFactory(edition=edition, email="same@example.jp")
    with pytest.raises(IntegrityError):
        ApplicationFactory(edition=edition, email="SAME@example.jp")
