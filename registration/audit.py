"""One way to write the audit log, used by every service."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from .models import Application, AuditEvent, Edition

PARENT = "parent"
SYSTEM = "system"


def actor_name(actor: User | None, label: str = SYSTEM) -> str:
    """Who did it, as the records that keep a name show it: the staff member's username, or the
    label of the system, a command or the parent."""
    return actor.get_username() if actor is not None else label


def log_action(
    action: str,
    *,
    actor: User | None = None,
    actor_label: str = SYSTEM,
    application: Application | None = None,
    edition: Edition | None = None,
    data: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    actor_label = actor_name(actor, actor_label)
    if edition is None and application is not None:
        edition = application.edition
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label,
        action=action,
        application=application,
        edition=edition,
        data=data or {},
        reason=reason,
    )
