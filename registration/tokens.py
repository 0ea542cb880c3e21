"""Signed, expiring links to My application.

The token is the application number signed with the site's secret key and a timestamp: it cannot
be guessed or altered, and it is refused after MY_APPLICATION_LINK_MAX_AGE_DAYS.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation

SALT = "registration.my-application"


class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    pass


def make_token(number: str) -> str:
    return signing.TimestampSigner(salt=SALT).sign(number)


def read_token(token: str) -> str:
    """The application number in a token; raises LinkExpired or LinkInvalid."""
    max_age = dt.timedelta(days=settings.MY_APPLICATION_LINK_MAX_AGE_DAYS)
    try:
        return signing.TimestampSigner(salt=SALT).unsign(token, max_age=max_age)
    except signing.SignatureExpired as e:
        raise LinkExpired from e
    except signing.BadSignature as e:
        raise LinkInvalid from e


def my_application_url(number: str, language: str) -> str:
    """Absolute link for e-mails, in the parent's language."""
    with translation.override(language):
        path = reverse("registration:my_application", kwargs={"token": make_token(number)})
    return settings.SITE_URL + path
