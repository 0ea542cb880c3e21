"""Who is asking, and what is refused before any view sees it.

- ``client_ip``: the client's address behind the reverse proxy. One function serves both
  django-axes (admin login lockouts) and the rate limits on the parents' forms, so that both
  count the same address.
- ``RefuseMalformedRequests``: oversized bodies, other charsets than UTF-8 and NUL in an
  address get 400 before anything reads them (files: DATA_UPLOAD_MAX_NUMBER_FILES in settings).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's IP address.

    With ``TRUSTED_PROXY_COUNT`` = 0 that is ``REMOTE_ADDR``. With n proxies in front, each of
    them appends the address it received the request from to ``X-Forwarded-For``, so the n-th
    entry from the right is the address the outermost proxy saw. Entries further left are
    whatever the client sent, and are never read: a forged header cannot choose the address
    that is counted or locked out.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count: int = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # Fewer hops than proxies: the request did not come through them (a health check on
        # the loopback interface), so the peer is the client.
        if len(hops) >= count:
            try:
                return str(ipaddress.ip_address(hops[-count]))
            except ValueError:
                pass
    return remote


# --- Requests refused before any view sees them ------------------------------------------------


# Forms are posted as UTF-8 (what browsers send for a UTF-8 page, without a charset parameter).
_ACCEPTED_CHARSETS = frozenset({"utf-8", "utf8"})


class RefuseMalformedRequests:
    """400, in the visitor's language, for requests that no page of this site can make sense
    of, before a view or the admin turns them into an error page (500):

    - a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE, by its Content-Length, before it is read
      (Django counts only the non-file part of a multipart body itself);
    - a body in any charset but UTF-8 (``charset=utf-16`` made Django decode the form into
      garbage that no field can hold);
    - a NUL character in the path or in the query string: PostgreSQL refuses it in text, so an
      admin search or filter with one was a 500.

    Placed after LocaleMiddleware, so the page is in the language of the URL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = self.problem(request)
        if problem:
            logger.warning("Refused a malformed request (%s)", problem)
            return render(request, "400.html", status=400)
        return self.get_response(request)

    @staticmethod
    def problem(request: HttpRequest) -> str | None:
        length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            too_big = int(length) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        except ValueError:
            return "unreadable Content-Length"
        if too_big:
            return "request body too large"
        charset = request.content_params.get("charset") if request.content_params else None
        if charset is not None and charset.strip().lower() not in _ACCEPTED_CHARSETS:
            return "request body not in UTF-8"
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            return "NUL in the address"
        return None


# --- Answers that take the same time ---------------------------------------------------------


@contextmanager
def answer_no_sooner_than(seconds: float) -> Iterator[None]:
    """Make the block take at least ``seconds`` of wall time, by sleeping after it: for a step
    whose work depends on a secret (whether an address has applied), so that its timing tells
    nothing. The sleep comes after the block, when its transaction has committed and its locks
    are released. A block that takes longer is logged: the floor is then too low to hide it."""
    started = time.perf_counter()
    try:
        yield
    finally:
        left = seconds - (time.perf_counter() - started)
        if left > 0:
            time.sleep(left)
        elif seconds > 0:
            logger.warning(
                "A constant-time answer took %.3f s, over its %.3f s", -left + seconds, seconds
            )
