"""Who may open which staff page: every rule in one place, over the permission codenames that
the groups of registration/migrations/0006_staff_roles.py hold. A page that refuses raises
PermissionDenied (``require``), which the admin shows as our 403 page.

The children's health notes and the sessions a childcare staff member sees are childcare's own
rule (childcare.models.may_see_health_notes, sessions_visible_to), used here and in its admin.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied

from childcare.models import may_see_health_notes, sessions_visible_to
from registration.models import Session

__all__ = [
    "may_change_application",
    "may_check_in",
    "may_decide_duplicates",
    "may_export_applications",
    "may_export_booths",
    "may_export_childcare",
    "may_export_reception",
    "may_resend_emails",
    "may_review_duplicates",
    "may_run_lottery",
    "may_see_dashboard",
    "may_see_health_notes",
    "may_see_lottery",
    "may_see_outbox",
    "require",
]


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def may_change_application(user: Any) -> bool:
    """Withdraw on a parent's request, mark duplicate or invalid, correct an answer."""
    return bool(user.has_perm("registration.change_application"))


def may_review_duplicates(user: Any) -> bool:
    # The queue shows both applications' contact data.
    return bool(
        user.has_perm("registration.view_duplicateflag")
        and user.has_perm("registration.view_application")
    )


def may_decide_duplicates(user: Any, action: str) -> bool:
    """Keep both ("keep"), or remove one of the pair (any other action)."""
    allowed = user.has_perm("registration.change_duplicateflag") and user.has_perm(
        "registration.view_application"
    )
    return bool(allowed) and (action == "keep" or may_change_application(user))


def may_check_in(user: Any) -> bool:
    """Reception on the day (the "reception" group)."""
    return bool(user.has_perm("registration.check_in"))


def may_run_lottery(user: Any) -> bool:
    """Freeze, enter the randomness, dry run, draw."""
    return bool(user.has_perm("lottery.change_lotteryrun"))


def may_see_lottery(user: Any) -> bool:
    return may_run_lottery(user) or bool(user.has_perm("lottery.view_lotteryrun"))


def may_see_dashboard(user: Any) -> bool:
    """The office's charts count applications: for staff who may read them."""
    return bool(user.has_perm("registration.view_application"))


def may_see_outbox(user: Any) -> bool:
    return bool(user.has_perm("registration.view_outboxemail"))


def may_resend_emails(user: Any) -> bool:
    return bool(user.has_perm("registration.resend_outboxemail"))


def may_export_applications(user: Any) -> bool:
    return bool(user.has_perm("registration.view_application"))


def may_export_reception(user: Any) -> bool:
    return may_check_in(user) or may_export_applications(user)


def may_export_booths(user: Any) -> bool:
    """Counts only, no personal data."""
    return may_export_applications(user) or bool(user.has_perm("registration.view_booth"))


def may_export_childcare(user: Any, session: Session | None = None) -> bool:
    """The roster: childcare staff of the sessions they are assigned to, the office and
    administrators of every session (the health notes only by may_see_health_notes)."""
    if not user.has_perm("childcare.view_child"):
        return False
    return session is None or sessions_visible_to(user).filter(pk=session.pk).exists()
