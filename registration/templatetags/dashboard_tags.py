"""The office's dashboard on the admin index (templates/admin/index.html)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from registration.dashboard import build_dashboard
from registration.models import Edition, OutboxEmail

register = template.Library()
WAITING_MINUTES = 30


@register.inclusion_tag("admin/dashboard/dashboard.html", takes_context=True)
def office_dashboard(context: template.Context) -> dict[str, Any]:
    """The current edition's charts, for staff who may read applications; nothing for others."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("registration.view_application"):
        return {"show": False}
    edition = Edition.objects.current()
    try:
        exports_url = reverse("admin:registration_export_index")
    except NoReverseMatch:  # the exports are not wired into this admin
        exports_url = ""
    return {
        "show": True,
        "dashboard": build_dashboard(edition) if edition else None,
        "exports_url": exports_url,
    }


@register.inclusion_tag("admin/dashboard/outbox_alert.html", takes_context=True)
def outbox_alert(context: template.Context) -> dict[str, Any]:
    """For staff who may read the outbox: e-mails the mail server refused for good, and e-mails
    that wait far longer than any retry should (the mail server or our account refusing every
    connection: a wrong password, a suspended sender)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("registration.view_outboxemail"):
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
