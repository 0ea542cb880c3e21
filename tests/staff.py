"""Staff members of each role (the groups of registration/migrations/0006_staff_roles.py), for
the tests that look at the back office as one of them."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse


def member(client, group: str, username: str | None = None):  # type: ignore[no-untyped-def]
    """A staff member of ``group``, logged in on ``client``."""
    user = get_user_model().objects.create(username=username or group, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return user


def admin_url(name: str, *args: object) -> str:
    return reverse(f"admin:{name}", args=args)


def office_url(name: str, *args: object) -> str:
    return reverse(f"office:{name}", args=args)
