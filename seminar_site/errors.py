"""Error pages rendered like every other page: the visitor's language, the office's phone number,
the link to the other language. Django's own 400 and 500 handlers render without the request,
so their pages would have neither."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render

logger = logging.getLogger(__name__)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "400.html", status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    try:
        return render(request, "500.html", status=500)
    except Exception:  # the page itself failed: a plain answer rather than none
        logger.exception("The error page could not be rendered")
        return HttpResponseServerError(
            "エラーが発生しました。 / Something went wrong.",
            content_type="text/plain; charset=utf-8",
        )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: most often a form left open for hours, or cookies blocked."""
    return render(request, "403_csrf.html", status=403)
