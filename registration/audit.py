"""One way to write the audit log, used by every service."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from .models import Application, AuditEvent, Edition

PARENT = "parent"
SYSTEM = "system"


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
    if actor is not None:
        actor_label = actor.get_username()
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
