"""The public home pages (``/`` and ``/<code>/``) served from the cache, per language.

What is cached: the whole HTML of the page, in each process's memory (PAGES_CACHE), for a
visitor without a query string and without pending messages. The page carries nothing personal
(no form, no CSRF token, no session data); a render that used the session or handed out a CSRF
token is not stored all the same. Only the generation key below is shared (default cache).

An entry stops being served when:

- staff save or delete an edition, session, option or childcare band (admin, seed_demo): the
  generation is dropped after the commit, and each entry carries the generation it was rendered
  under. ``QuerySet.update()`` sends no signal: code that changes what these pages show with it
  must call ``invalidate()``. The receivers are connected when this module is imported, by
  RegistrationConfig.ready() in every process (web, workers, shell);
- registration opens or closes: each entry carries the next such moment after its render (of
  any published edition for ``/``, which shows the edition open now, else the latest one);
- TIMEOUT seconds have passed. This bounds what no invalidation reaches: without Redis the
  generation too is one per process (other gunicorn workers keep their copy), a Redis that was
  down during the save, and templates changed by a deploy.

The cache may fail: Django's RedisCache raises on a connection error, after its 1 s socket
timeout at worst. The page is then rendered as if nothing were cached, with one attempt per
request.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from django.contrib.messages import get_messages
from django.core.cache import cache, caches
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import get_language

from childcare.models import ChildcareBand

from .models import Edition, Option, Session

logger = logging.getLogger(__name__)

TIMEOUT = 60  # seconds
# The pages themselves (tens of kB each) live in each process's memory (settings.CACHES): only
# the small generation key goes to the shared cache (Redis) on each request, so a page from the
# cache costs little more than a trivial view. A process renders each page once a minute.
PAGES_CACHE = "public_pages"
# The 1 is CachedPage's shape: change it with the shape, so that a deploy never reads an entry
# of the previous one.
GENERATION_KEY = "public-page:1:generation"
PAGE_KEY = "public-page:1:{target}:{language}"


class CachedPage(TypedDict):
    generation: str
    expires: dt.datetime  # the next opening or closing of registration after the render
    content: bytes  # the HTML, encoded once


# Renders the page as of ``now`` (or a little later); returns it with the moment it stops being
# right (None: do not cache it).
Build = Callable[[dt.datetime], tuple[HttpResponse, dt.datetime | None]]


def serve(request: HttpRequest, target: str, build: Build) -> HttpResponse:
    """The page ``target`` in the active language: from the cache, else built and stored."""
    now = timezone.now()
    # The language link repeats the query string, and messages belong to one visitor.
    if request.GET or get_messages(request):
        return build(now)[0]
    key = PAGE_KEY.format(target=target, language=get_language())
    pages = caches[PAGES_CACHE]
    try:
        generation: str | None = cache.get(GENERATION_KEY)
    except Exception as e:  # any cache failure: render without it
        logger.warning("page cache unavailable, rendering %s: %r", request.path, e)
        return build(now)[0]
    page: CachedPage | None = pages.get(key)
    if page and page["generation"] == generation and now < page["expires"]:
        return HttpResponse(page["content"])
    # Read before the database: a render that reads data older than a change is tagged with
    # the generation that the change drops.
    generation = generation or _new_generation()
    response, expires = build(now)
    if generation and expires and response.status_code == 200 and not _personal(request):
        entry = CachedPage(generation=generation, expires=expires, content=response.content)
        pages.set(key, entry, TIMEOUT)
    return response


def next_change(editions: Iterable[Edition], now: dt.datetime) -> dt.datetime:
    """When registration next opens or closes for one of ``editions``; TIMEOUT ahead at most."""
    moments = [
        moment
        for edition in editions
        for moment in (edition.registration_opens_at, edition.registration_closes_at)
        if moment > now
    ]
    return min([now + dt.timedelta(seconds=TIMEOUT), *moments])


def invalidate() -> None:
    """Every cached page is stale from now on."""
    try:
        cache.delete(GENERATION_KEY)
    except Exception as e:  # the save went through; TIMEOUT bounds the rest
        logger.warning("page cache unavailable, not invalidated: %r", e)


def _new_generation() -> str | None:
    generation = secrets.token_hex(8)
    try:
        if cache.add(GENERATION_KEY, generation, timeout=None):
            return generation
        return cache.get(GENERATION_KEY)  # another process was first
    except Exception as e:
        logger.warning("page cache unavailable: %r", e)
        return None


def _personal(request: HttpRequest) -> bool:
    """Did the render read the session or hand out a CSRF token? Then it is this visitor's."""
    session = getattr(request, "session", None)
    return bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE")) or bool(
        session is not None and session.accessed
    )


def _changed(sender: type, using: str, **kwargs: Any) -> None:
    # After the commit: a render that starts before it reads the old data, and must find its
    # generation gone when it stores the result.
    transaction.on_commit(invalidate, using=using)


for _model in (Edition, Session, Option, ChildcareBand):
    post_save.connect(_changed, sender=_model, dispatch_uid=f"page_cache.{_model.__name__}.save")
    post_delete.connect(
        _changed, sender=_model, dispatch_uid=f"page_cache.{_model.__name__}.delete"
    )
