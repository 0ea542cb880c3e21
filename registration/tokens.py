"""Every signed token of the site: the link to My application and the admission ticket.

The link's token is the application number signed with the site's secret key and a timestamp:
it cannot be guessed or altered, and it is refused after MY_APPLICATION_LINK_MAX_AGE_DAYS.

Whoever holds the link acts as the parent, so it exists only in the parent's mailbox: the outbox
stores each e-mail with ``PLACEHOLDER`` where the token goes (outbox/send.py puts the real
one in at the moment of sending), and logs show the path with the token replaced
(``redact_paths``).

The ticket's QR code holds the application number signed with the site's key and nothing else:
a lost printout or a photo of it tells a finder no name, and reception reads the number back
with read_ticket(). It has no timestamp, so a ticket printed in January still works on the day.
"""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation

SALT = "registration.my-application"
TICKET_SALT = "registration.ticket"
# What staff see in a stored e-mail instead of the parent's token: a link that opens nothing.
PLACEHOLDER = "PRIVATE-LINK-REMOVED"
# The path segment after /my/ (or /en/my/) in a URL, whatever it holds: a real token, a tampered
# one, or a percent-encoded one. "/my/" alone (the "e-mail me my link" form) is left as it is.
_TOKEN_IN_PATH = re.compile(r"(/my/)([^/?#\s\"'<>]+)")


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def _signer() -> signing.TimestampSigner:
    # Raising MY_APPLICATION_LINK_GENERATION cancels every link sent before (README "Security").
    generation = settings.MY_APPLICATION_LINK_GENERATION
    return signing.TimestampSigner(salt=SALT if generation == 1 else f"{SALT}.{generation}")


def make_token(number: str) -> str:
    return _signer().sign(number)


def read_token(token: str) -> str:
    """The application number in a token; raises LinkExpired or LinkInvalid."""
    max_age = dt.timedelta(days=settings.MY_APPLICATION_LINK_MAX_AGE_DAYS)
    try:
        return _signer().unsign(token, max_age=max_age)
    except signing.SignatureExpired as e:
        raise LinkExpired from e
    except signing.BadSignature as e:
        raise LinkInvalid from e


def my_application_url(number: str, language: str, *, token: str | None = None) -> str:
    """Absolute link for e-mails, in the parent's language; with ``token`` (PLACEHOLDER) the
    same link with that text where the parent's token goes."""
    with translation.override(language):
        path = reverse("registration:my_application", kwargs={"token": token or make_token(number)})
    return settings.SITE_URL + path


def with_token(text: str, number: str) -> str:
    """``text`` rendered with PLACEHOLDER, with the parent's real token in its place."""
    return text.replace(f"/my/{PLACEHOLDER}/", f"/my/{make_token(number)}/")


def redact_paths(text: str) -> str:
    """``text`` (a log line, a URL, an e-mail body) with every My application token replaced."""
    return _TOKEN_IN_PATH.sub(rf"\g<1>{PLACEHOLDER}", text)


class TicketInvalid(signing.BadSignature):
    """A scanned code that this site did not make, or that was altered."""


def make_ticket(number: str) -> str:
    """The text of the QR code: ``<number>:<signature>``."""
    return signing.Signer(salt=TICKET_SALT).sign(number)


def read_ticket(token: str) -> str:
    """The application number in a scanned ticket; raises TicketInvalid if it was not ours."""
    try:
        return signing.Signer(salt=TICKET_SALT).unsign(token.strip())
    except signing.BadSignature as e:
        raise TicketInvalid(str(e)) from e
