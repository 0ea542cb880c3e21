"""Every state change of an application, by the parent or by staff. Each owns its transaction
and its audit row (who: ``actor``, a staff member, or None for the parent and the system) and
queues the e-mails it owes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from django.contrib.auth.models import User
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from childcare.models import Child
from lottery.models import LotteryRun
from lottery.services import places_rebalance

from . import audit
from .models import (
    Application,
    Attendance,
    Booth,
    DuplicateFlag,
    Edition,
    Option,
    OutboxEmail,
)
from .outbox.queue import outbox_enqueue, outbox_enqueue_link_request

# A second application to an address that has one e-mails its owner at most this often.
ALREADY_APPLIED_EVERY = dt.timedelta(days=1)


class RegistrationClosed(Exception):
    pass


class NotChangeable(Exception):
    pass


class AlreadyReviewed(Exception):
    """The pair has no open flag any more: another staff member (or a double click) was first."""


class AlreadyArrived(Exception):
    """Reception had already recorded this party (a second scan, another desk)."""


@dataclass(frozen=True)
class ChildInput:
    name: str
    name_kana: str
    date_of_birth: dt.date
    notes: str = ""


@dataclass(frozen=True)
class ApplicationInput:
    """What a parent entered, validated by the form."""

    choices: list[Option]
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    email: str
    phone: str
    municipality: str
    grades: list[str]
    adults: int = 1
    children: int = 0
    childcare_fallback: str = ""
    childcare_children: list[ChildInput] = field(default_factory=list)
    needs_sign_language: bool = False
    needs_wheelchair_space: bool = False
    needs_other: str = ""
    questions: str = ""
    booths: list[Booth] = field(default_factory=list)
    health_consent: bool = False

    def model_fields(self) -> dict[str, object]:
        choices = [*self.choices, None, None][:3]
        return {
            "choice_1": choices[0],
            "choice_2": choices[1],
            "choice_3": choices[2],
            "family_name": self.family_name,
            "given_name": self.given_name,
            "family_name_kana": self.family_name_kana,
            "given_name_kana": self.given_name_kana,
            "phone": self.phone,
            "municipality": self.municipality,
            "grades": ",".join(self.grades),
            "adults": self.adults,
            "children": self.children,
            "childcare_fallback": self.childcare_fallback if self.childcare_children else "",
            "needs_sign_language": self.needs_sign_language,
            "needs_wheelchair_space": self.needs_wheelchair_space,
            "needs_other": self.needs_other,
            "questions": self.questions,
        }


def application_submit(
    *, edition: Edition, data: ApplicationInput, language: str, now: dt.datetime | None = None
) -> Application | None:
    """Submit an application. Steps:

    1. refuse if registration is closed;
    2. if the e-mail already holds an active application, e-mail its link instead (the parent
       sees the same page either way: nothing tells a stranger whether an address applied);
    3. create the application, its children and booths of interest;
    4. flag likely duplicates under other e-mail addresses for staff;
    5. queue the receipt e-mail in the same transaction.

    Returns the new application, or None when the e-mail already had one.
    """
    now = now or timezone.now()
    if not edition.registration_is_open(now):
        raise RegistrationClosed
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return _submit(edition=edition, data=data, language=language, now=now)
        except IntegrityError as e:
            # Two requests with the same e-mail at once: the unique constraint lets one in and
            # the other becomes the neutral "already applied" answer on the next attempt.
            # A colliding application number (1 in 10^11) just draws another.
            last_error = e
    raise last_error


def _submit(
    *, edition: Edition, data: ApplicationInput, language: str, now: dt.datetime
) -> Application | None:
    # Locked, so that attempts at once for one address see each other's "already applied" e-mail.
    existing = (
        Application.objects.active()
        .with_email(data.email)
        .filter(edition=edition)
        .select_for_update()
        .first()
    )
    if existing is not None:
        # One such e-mail a day at most: a stranger repeating the form must not flood the
        # parent's mailbox. The attempt itself is always in the application's history.
        already_told = existing.emails.filter(
            kind=OutboxEmail.Kind.ALREADY_APPLIED, created_at__gt=now - ALREADY_APPLIED_EVERY
        ).exists()
        if not already_told:
            # To the address the application holds, as every e-mail about it.
            outbox_enqueue(kind=OutboxEmail.Kind.ALREADY_APPLIED, application=existing)
        audit.log_action(
            "application.second_attempt",
            actor_label=audit.PARENT,
            application=existing,
            data={"emailed": not already_told},
        )
        return None
    application = Application.objects.create(
        edition=edition,
        email=data.email,
        language=language,
        privacy_consent_at=now,
        health_consent_at=now if data.health_consent and data.childcare_children else None,
        created_at=now,
        updated_at=now,
        **data.model_fields(),
    )
    _save_children_and_booths(application, data)
    flag_duplicates(application)
    outbox_enqueue(kind=OutboxEmail.Kind.RECEIPT, application=application)
    audit.log_action("application.submitted", actor_label=audit.PARENT, application=application)
    return application


def _save_children_and_booths(application: Application, data: ApplicationInput) -> None:
    Child.objects.bulk_create(
        Child(
            application=application,
            position=i,
            name=c.name,
            name_kana=c.name_kana,
            date_of_birth=c.date_of_birth,
            notes=c.notes,
        )
        for i, c in enumerate(data.childcare_children, start=1)
    )
    application.booths_of_interest.set(data.booths)


def flag_duplicates(application: Application) -> list[DuplicateFlag]:
    """Flag active applications under other addresses that look like the same household."""
    others = (
        Application.objects.active().filter(edition=application.edition).exclude(pk=application.pk)
    )
    matches: list[tuple[Application, str]] = [
        (o, DuplicateFlag.Reason.PHONE) for o in others.filter(phone=application.phone)
    ]
    matches += [
        (o, DuplicateFlag.Reason.NAME)
        for o in others.filter(
            family_name=application.family_name,
            given_name=application.given_name,
            family_name_kana=application.family_name_kana,
            given_name_kana=application.given_name_kana,
        )
    ]
    children = list(application.childcare_children.all())
    if children:
        child_match = Q()
        for c in children:
            child_match |= Q(
                childcare_children__name_kana=c.name_kana,
                childcare_children__date_of_birth=c.date_of_birth,
            )
        matches += [(o, DuplicateFlag.Reason.CHILD) for o in others.filter(child_match).distinct()]
    flags = []
    for other, reason in matches:
        # Flag both sides so each shows up in the review queue with its twin.
        for a, b in ((application, other), (other, application)):
            flag, _ = DuplicateFlag.objects.get_or_create(application=a, other=b, reason=reason)
            flags.append(flag)
    return flags


@transaction.atomic
def application_change(
    *, application: Application, data: ApplicationInput, now: dt.datetime | None = None
) -> Application:
    """Change an application while registration is open; the parent is e-mailed a summary."""
    now = now or timezone.now()
    application = Application.objects.select_for_update().get(pk=application.pk)
    if not application.can_change(now):
        raise NotChangeable
    before = {k: str(getattr(application, k)) for k in data.model_fields()}
    for name, value in data.model_fields().items():
        setattr(application, name, value)
    if data.childcare_children and data.health_consent and not application.health_consent_at:
        application.health_consent_at = now
    if not data.childcare_children:
        application.health_consent_at = None
    application.updated_at = now
    application.save()
    application.childcare_children.all().delete()
    _save_children_and_booths(application, data)
    flag_duplicates(application)
    changed = {
        k: [before[k], str(v)] for k, v in data.model_fields().items() if before[k] != str(v)
    }
    audit.log_action(
        "application.changed",
        actor_label=audit.PARENT,
        application=application,
        data={"changed": sorted(changed)},
    )
    outbox_enqueue(kind=OutboxEmail.Kind.CHANGED, application=application)
    return application


@transaction.atomic
def application_withdraw(
    *,
    application: Application,
    actor: User | None = None,
    reason: str = "",
    now: dt.datetime | None = None,
) -> bool:
    """Withdraw (辞退), by the parent or by staff on the parent's request. Steps:

    1. refuse once the session has started (Application.withdraw_deadline);
    2. mark it withdrawn with a conditional update (a double click changes nothing);
    3. after the draw, give its place back and promote from the waiting lists (LOTTERY.md §5),
       in this same transaction;
    4. log who did it and why, and confirm by e-mail.
    Returns False if it was not active.
    """
    now = now or timezone.now()
    if now >= application.withdraw_deadline():
        raise NotChangeable
    done = Application.objects.filter(pk=application.pk, status=Application.Status.ACTIVE).update(
        status=Application.Status.WITHDRAWN,
        withdrawn_at=now,
        updated_at=now,
        status_reason=reason,
    )
    if done != 1:
        return False
    application.refresh_from_db()
    audit.log_action(
        "application.withdrawn",
        actor=actor,
        actor_label=audit.PARENT,
        application=application,
        reason=reason,
    )
    _give_place_back(application, now)
    outbox_enqueue(kind=OutboxEmail.Kind.WITHDRAWN, application=application)
    return True


@transaction.atomic
def application_remove(
    *,
    application: Application,
    status: str,
    actor: User | None,
    reason: str,
    now: dt.datetime | None = None,
) -> bool:
    """Staff mark an application duplicate or invalid (with a reason). After the draw its place
    goes to the waiting lists like a withdrawal (LOTTERY.md §5). Returns False if not active."""
    if status not in (Application.Status.DUPLICATE, Application.Status.INVALID):
        raise ValueError(status)
    now = now or timezone.now()
    done = Application.objects.filter(pk=application.pk, status=Application.Status.ACTIVE).update(
        status=status, updated_at=now, status_reason=reason
    )
    if done != 1:
        return False
    application.refresh_from_db()
    DuplicateFlag.objects.filter(
        application=application, resolution=DuplicateFlag.Resolution.OPEN
    ).update(resolution=DuplicateFlag.Resolution.MARKED, resolved_at=now, resolved_by=actor)
    audit.log_action(
        f"application.marked_{status}", actor=actor, application=application, reason=reason
    )
    _give_place_back(application, now)
    return True


def _give_place_back(application: Application, now: dt.datetime) -> None:
    """After the freeze, an application that left is an event of the lottery: after the draw
    its place goes to the waiting lists at once; before it, the draw records it."""
    if LotteryRun.objects.filter(edition_id=application.edition_id).exists():
        places_rebalance(application=application, now=now)


@transaction.atomic
def application_resend_link(*, email: str, language: str) -> None:
    """E-mail the link to My application if this address applied; nothing otherwise.

    The request is queued as it is, whether or not the address applied: the same insert, the
    same task, the same answer in the same time, so that neither the page nor its timing tells
    a stranger whether an address is registered. The mail worker looks the address up
    (ApplicationQuerySet.linked_to) and sends the link, or deletes the request
    (mail.outbox_send_many)."""
    outbox_enqueue_link_request(to=email, language=language)


# --- Staff corrections ---------------------------------------------------------------------


class FieldChange(TypedDict):
    """``{"changed": {field: [old, new]}, "values_not_recorded": [field, ...]}``"""

    changed: dict[str, list[str]]
    values_not_recorded: list[str]


class ChildChange(FieldChange):
    child: int
    change: str  # added, changed, deleted


class StaffChangeData(TypedDict, total=False):
    """AuditEvent.data of ``application.staff_changed``."""

    changed: dict[str, list[str]]
    children: list[ChildChange]


# Health information never goes into the audit log, which the office reads: only the fact
# that it changed.
VALUES_NOT_RECORDED = {"notes"}
CHILD_FIELDS = ["position", "name", "name_kana", "date_of_birth", "notes"]
# A change to these makes the application look like another household, or no longer like one.
IDENTITY_FIELDS = {"family_name", "given_name", "family_name_kana", "given_name_kana", "phone"}


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Iterable) and not isinstance(value, str):
        return ", ".join(sorted(as_text(v) for v in value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _child_change(change: str, position: int, fields: dict[str, tuple[Any, Any]]) -> ChildChange:
    return {
        "child": position,
        "change": change,
        "changed": {
            name: [as_text(old), as_text(new)]
            for name, (old, new) in fields.items()
            if name not in VALUES_NOT_RECORDED
        },
        "values_not_recorded": sorted(set(fields) & VALUES_NOT_RECORDED),
    }


@dataclass
class ChildEdits:
    """The children as a staff member left them on the application's page, not yet saved: new
    rows, changed rows with the names of the fields that changed, rows to delete."""

    added: list[Child] = field(default_factory=list)
    changed: list[tuple[Child, list[str]]] = field(default_factory=list)
    deleted: list[Child] = field(default_factory=list)


@transaction.atomic
def application_staff_change(
    *,
    application: Application,
    fields: dict[str, Any],
    children: ChildEdits | None = None,
    actor: User | None,
    reason: str,
    now: dt.datetime | None = None,
) -> StaffChangeData:
    """Staff correct an application (a phone call, a typo), with a reason. Steps:

    1. lock the row, so that "old" is exactly what this change replaces, even when the parent
       or another staff member saves at the same moment;
    2. save the changed ``fields`` (name → new value, many-to-many ones included) and the
       children's additions, changes and deletions;
    3. write one audit event for the whole edit: old → new per field and per child (of the
       health notes only the fact that they changed), who and why;
    4. an identity change of an active application looks for duplicates again.
    Returns what was logged (empty when nothing changed).
    """
    now = now or timezone.now()
    children = children or ChildEdits()
    locked = Application.objects.select_for_update().get(pk=application.pk)
    data: StaffChangeData = {}
    changed: dict[str, list[str]] = {}
    plain: list[str] = []
    for name, new in fields.items():
        if Application._meta.get_field(name).many_to_many:
            changed[name] = [as_text(getattr(locked, name).all()), as_text(new)]
            getattr(locked, name).set(new)
        else:
            changed[name] = [as_text(getattr(locked, name)), as_text(new)]
            setattr(locked, name, new)
            plain.append(name)
    if changed:
        data["changed"] = changed

    edits: list[ChildChange] = []
    old_children = {
        c.pk: c for c in Child.objects.filter(pk__in=[c.pk for c, _names in children.changed])
    }
    for child in children.added:
        child.application = locked
        child.save()
        values = {f: (None, getattr(child, f)) for f in CHILD_FIELDS}
        edits.append(
            _child_change(
                "added", child.position, {f: v for f, v in values.items() if v[1] not in (None, "")}
            )
        )
    for child, names in children.changed:
        before = old_children[child.pk]
        child.save()
        values = {n: (getattr(before, n), getattr(child, n)) for n in names}
        edits.append(_child_change("changed", child.position, values))
    for child in children.deleted:
        child.delete()
        edits.append(_child_change("deleted", child.position, {}))
    if edits:
        data["children"] = edits
    if not data:
        return data

    locked.updated_at = now
    locked.save(update_fields=[*plain, "updated_at"])
    application.updated_at = now
    audit.log_action(
        "application.staff_changed",
        actor=actor,
        application=locked,
        data=dict(data),
        reason=reason,
    )
    if (IDENTITY_FIELDS & set(changed) or edits) and locked.status == Application.Status.ACTIVE:
        flag_duplicates(locked)
    return data


# --- Duplicate review (SPEC §3) ------------------------------------------------------------


def _pair_flags(a: Application, b: Application) -> models.QuerySet[DuplicateFlag]:
    return DuplicateFlag.objects.open().filter(
        Q(application=a, other=b) | Q(application=b, other=a)
    )


def _claim_pair(
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
    reasons = _claim_pair(application, other, DuplicateFlag.Resolution.KEPT, actor, now)
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
    2. application_remove: status, reason, its own flags resolved, its lottery place given
       back to the waiting lists;
    3. resolve the flags other applications hold against it (it is no longer active), and log
       the outcome in the kept application's history too.
    """
    now = now or timezone.now()
    reasons = _claim_pair(remove, keep, DuplicateFlag.Resolution.MARKED, actor, now)
    if not application_remove(
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


# --- Reception on the day ------------------------------------------------------------------


def attendance_record(*, application: Application, heads: int, actor: User | None) -> Attendance:
    """Reception marks a party arrived with the number of people who came, once: raises
    AlreadyArrived when it had been (the one Attendance row per application decides)."""
    try:
        with transaction.atomic():
            attendance = Attendance.objects.create(
                application=application, heads=heads, checked_in_by=audit.actor_name(actor)
            )
            audit.log_action(
                "application.arrived", actor=actor, application=application, data={"heads": heads}
            )
    except IntegrityError as e:
        raise AlreadyArrived from e
    return attendance
