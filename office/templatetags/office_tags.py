"""What the admin's own pages show of the back office: the dashboard and the outbox alert on the
index, the review queue's size on the duplicate flags, the sessions on the arrivals list."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from registration.models import DuplicateFlag, Edition, OutboxEmail, Session

from .. import permissions
from ..dashboard import build_dashboard

register = template.Library()
WAITING_MINUTES = 30


def _user(context: template.Context) -> Any:
    return getattr(context.get("request"), "user", None)


@register.inclusion_tag("admin/office/dashboard/dashboard.html", takes_context=True)
def office_dashboard(context: template.Context) -> dict[str, Any]:
    """The current edition's charts, for staff who may read applications; nothing for others."""
    user = _user(context)
    if user is None or not permissions.may_see_dashboard(user):
        return {"show": False}
    edition = Edition.objects.current()
    return {
        "show": True,
        "dashboard": build_dashboard(edition) if edition else None,
        "exports_url": reverse("office:export_index"),
    }


@register.inclusion_tag("admin/office/dashboard/outbox_alert.html", takes_context=True)
def outbox_alert(context: template.Context) -> dict[str, Any]:
    """For staff who may read the outbox: e-mails the mail server refused for good, and e-mails
    that wait far longer than any retry should (the mail server or our account refusing every
    connection: a wrong password, a suspended sender)."""
    user = _user(context)
    if user is None or not permissions.may_see_outbox(user):
        return {"failed": 0, "waiting": 0}
    emails = OutboxEmail.objects.all()
    since = timezone.now() - dt.timedelta(minutes=WAITING_MINUTES)
    changelist = reverse("admin:registration_outboxemail_changelist")
    return {
        "failed": emails.filter(status=OutboxEmail.Status.FAILED).count(),
        "failed_url": changelist + "?status__exact=failed",
        "waiting": emails.filter(status=OutboxEmail.Status.QUEUED, created_at__lt=since).count(),
        "waiting_url": changelist + "?status__exact=queued",
        "minutes": WAITING_MINUTES,
    }


@register.simple_tag
def open_duplicate_pairs() -> int:
    """The pairs waiting in the review queue."""
    return DuplicateFlag.objects.open().pair_count()


@register.simple_tag
def reception_sessions() -> list[Session]:
    """Every session, the latest first, for its check-in and reception list."""
    return list(Session.objects.select_related("edition").order_by("-date"))
