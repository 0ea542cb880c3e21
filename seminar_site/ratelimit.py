"""Rate limits on the parents' public forms (django-ratelimit), failing open.

Each limit counts POSTs in the cache (Redis in production). When the cache cannot be reached,
the request goes through and a warning is logged: a parent must never be kept from applying
because Redis is down, and the forms validate every input anyway. Over the limit the parent
sees a polite page with status 429, never an error.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError

from registration.normalize import normalize_email

logger = logging.getLogger(__name__)

View = Callable[..., HttpResponse]
Key = str | Callable[[str, HttpRequest], str]


@dataclass(frozen=True)
class Limit:
    """``key`` as django-ratelimit understands it (``"ip"`` or a callable); ``rate_setting``
    names the setting that holds the rate (``"30/10m"``), read at each request."""

    key: Key
    rate_setting: str


def email_key(group: str, request: HttpRequest) -> str:
    """The mailbox posted, so that one address is not flooded from many places: spelled as the
    application stores it (registration.normalize.normalize_email), so that its full-width,
    upper-case and punycode spellings count against one limit."""
    posted = request.POST.get("email", "")
    try:
        return normalize_email(posted).lower()
    except ValidationError:  # not an address: the form refuses it; count it as typed
        return posted.strip().lower()


def limit_posts(group: str, *limits: Limit) -> Callable[[View], View]:
    """Refuse a POST with 429 once any of ``limits`` is exceeded. GETs are never counted."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                for index, limit in enumerate(limits):
                    retry_after = _retry_after(request, f"{group}.{index}", limit)
                    if retry_after is not None:
                        return too_many_requests(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _retry_after(request: HttpRequest, group: str, limit: Limit) -> int | None:
    """Count this request; the seconds until the window ends if it is over the limit."""
    try:
        usage = get_usage(
            request,
            group=group,
            key=limit.key,
            rate=getattr(settings, limit.rate_setting),
            method="POST",
            increment=True,
        )
    except (RedisError, OSError):  # Redis down or timing out: fail open, see the docstring.
        logger.warning("rate limit %s not checked: the cache is unavailable", group, exc_info=True)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(1, int(usage["time_left"]))


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    response = render(request, "429.html", status=429)
    response["Retry-After"] = str(retry_after)
    return response
