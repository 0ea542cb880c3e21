"""Staff review of likely duplicates (SPEC §3): keep both, or remove one of a pair.

A flag is open while it is unresolved and both of its applications are active. Flags come in
mirrored pairs (A→B and B→A, one per reason), so the queue shows each pair of applications
once, with every reason that flagged it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import audit, services
from .models import Application, DuplicateFlag, Edition


class AlreadyReviewed(Exception):
    """The pair has no open flag any more: another staff member (or a double click) was first."""


@dataclass
class DuplicatePair:
    """Two active applications that look like one household; ``first`` was submitted first."""

    first: Application
    second: Application
    reasons: list[str] = field(default_factory=list)
    flagged_at: dt.datetime | None = None

    @property
    def applications(self) -> tuple[Application, Application]:
        return self.first, self.second

    def reason_labels(self) -> list[str]:
        return [str(DuplicateFlag.Reason(r).label) for r in self.reasons]


def open_flags(edition: Edition | None = None) -> QuerySet[DuplicateFlag]:
    """Unresolved flags whose two applications are both still active."""
    flags = DuplicateFlag.objects.filter(
        resolution=DuplicateFlag.Resolution.OPEN,
        application__status=Application.Status.ACTIVE,
        other__status=Application.Status.ACTIVE,
    )
    return flags.filter(application__edition=edition) if edition is not None else flags


def open_pair_count(edition: Edition | None = None) -> int:
    ids = open_flags(edition).values_list("application_id", "other_id")
    return len({(min(a, b), max(a, b)) for a, b in ids})


def open_pairs(edition: Edition | None = None) -> list[DuplicatePair]:
    """The review queue, oldest flag first, in a fixed number of queries."""
    related = [
        f"{side}__{choice}__session"
        for side in ("application", "other")
        for choice in ("choice_1", "choice_2", "choice_3")
    ]
    flags = (
        open_flags(edition)
        .select_related("application__edition", "other__edition", *related)
        .prefetch_related("application__childcare_children", "other__childcare_children")
        .order_by("created_at", "id")
    )
    pairs: dict[tuple[int, int], DuplicatePair] = {}
    for flag in flags:
        a, b = sorted((flag.application, flag.other), key=lambda x: (x.created_at, x.pk))
        pair = pairs.setdefault((a.pk, b.pk), DuplicatePair(first=a, second=b))
        if flag.reason not in pair.reasons:
            pair.reasons.append(flag.reason)
        if pair.flagged_at is None or flag.created_at < pair.flagged_at:
            pair.flagged_at = flag.created_at
    return list(pairs.values())


def _pair_flags(a: Application, b: Application) -> QuerySet[DuplicateFlag]:
    return open_flags().filter(Q(application=a, other=b) | Q(application=b, other=a))


def _claim(
    a: Application, b: Application, resolution: str, actor: User | None, now: dt.datetime
) -> list[str]:
    """Resolve the pair's open flags with a conditional update, so two staff members reviewing
    the same pair at once (or a double click) cannot both act on it. The update filters on the
    flag rows' own columns only: a join would become ``pk IN (subquery)``, which PostgreSQL
    does not re-check after waiting for the other transaction's row locks."""
    found = list(_pair_flags(a, b).values_list("pk", "reason"))
    claimed = DuplicateFlag.objects.filter(
        pk__in=[pk for pk, _ in found], resolution=DuplicateFlag.Resolution.OPEN
    ).update(resolution=resolution, resolved_at=now, resolved_by=actor)
    if not claimed:
        raise AlreadyReviewed
    return sorted({reason for _, reason in found})


@transaction.atomic
def duplicate_keep_both(
    *,
    application: Application,
    other: Application,
    actor: User | None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Staff found two households, not one. Steps:

    1. resolve the pair's open flags as kept (raises AlreadyReviewed if none was open);
    2. log it in both applications' history.
    """
    now = now or timezone.now()
    reasons = _claim(application, other, DuplicateFlag.Resolution.KEPT, actor, now)
    for this, that in ((application, other), (other, application)):
        audit.log_action(
            "duplicate.kept",
            actor=actor,
            application=this,
            data={"other": that.number, "flags": reasons},
            reason=reason,
        )


@transaction.atomic
def duplicate_remove_one(
    *,
    remove: Application,
    keep: Application,
    status: str,
    actor: User | None,
    reason: str,
    now: dt.datetime | None = None,
) -> None:
    """Staff mark one application of a pair duplicate or invalid. Steps:

    1. resolve the pair's open flags (raises AlreadyReviewed if none was open, so two staff
       members cannot remove both sides of one pair);
    2. services.application_remove: status, reason, its own flags resolved, its lottery place
       given back to the waiting lists;
    3. resolve the flags other applications hold against it (it is no longer active), and log
       the outcome in the kept application's history too.
    """
    now = now or timezone.now()
    reasons = _claim(remove, keep, DuplicateFlag.Resolution.MARKED, actor, now)
    if not services.application_remove(
        application=remove, status=status, actor=actor, reason=reason, now=now
    ):
        raise AlreadyReviewed  # withdrawn meanwhile: the claim above is rolled back
    DuplicateFlag.objects.filter(other=remove, resolution=DuplicateFlag.Resolution.OPEN).update(
        resolution=DuplicateFlag.Resolution.MARKED, resolved_at=now, resolved_by=actor
    )
    audit.log_action(
        "duplicate.other_removed",
        actor=actor,
        application=keep,
        data={"other": remove.number, "status": status, "flags": reasons},
        reason=reason,
    )
