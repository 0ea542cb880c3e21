"""Logs that hold no private link and no staff search: the access log of gunicorn and Django's
own log records, with every My application token and every query value replaced.

A My application link lets whoever holds it act as the parent for 180 days, so it must not sit
in log files that operators, log shippers and backups keep. Query values are dropped too: the
admin's search box (``?q=山田``) and reception's look-up put names, phone numbers and e-mail
addresses there. Parameter names stay, so a log line still says which page was asked for.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from gunicorn.glogging import Logger

from registration.tokens import redact_paths

_QUERY_VALUE = re.compile(r"([?&][^=&\s#\"]*=)[^&\s#\"]*")
REDACTED = "*"


def redact(text: str) -> str:
    """``text`` with My application tokens and the values of query parameters replaced."""
    if "/my/" in text:
        text = redact_paths(text)
    if "=" in text:
        text = _QUERY_VALUE.sub(rf"\g<1>{REDACTED}", text)
    return text


def redact_uri(uri: str) -> str:
    """A URL or a request line's target, percent-decoded before the token is looked for (a
    client may write ``/my%2F<token>/``, which still reaches My application)."""
    path, sep, query = uri.partition("?")
    return redact(unquote(path) + sep + query)


# Atoms that hold a URL, whose path is percent-decoded before the token is looked for.
_URL_ATOMS = ("f", "{referer}i", "{location}o", "{raw_uri}e", "{request_uri}e", "{path_info}e")


class GunicornLogger(Logger):
    """gunicorn's logger with every access-log atom redacted (``logger_class`` in
    gunicorn.conf.py): the request line, the path, the query, the referrer (a page's own link,
    since Referrer-Policy is same-origin) and the headers, a redirect's Location included. Its
    error log ("Invalid request line …", "Error handling request /my/…") gets the same filter
    as Django's handlers."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.addFilter(RedactPrivateLinks())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        redacted = {
            key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()
        }
        method, _, rest = str(atoms.get("r", "")).partition(" ")
        target, _, protocol = rest.rpartition(" ")
        redacted["r"] = f"{method} {redact_uri(target)} {protocol}"
        # The query string atom has no "?" before its first parameter.
        redacted["q"] = redact(f"?{atoms.get('q') or ''}")[1:]
        for key in _URL_ATOMS:
            if isinstance(atoms.get(key), str):
                redacted[key] = redact_uri(atoms[key])
        return redacted


class RedactPrivateLinks(logging.Filter):
    """For Django's log records (``Not Found: /my/<token>/`` from django.request, runserver's
    request lines from django.server, tracebacks): the same redaction, on every handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
