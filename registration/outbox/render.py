"""The subject, text and HTML of one e-mail, in the parent's language."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from ..models import Option, OutboxEmail
from ..results import result_context
from ..tokens import PLACEHOLDER, my_application_url


def render(email: OutboxEmail, *, options: dict[str, Option] | None = None) -> tuple[str, str, str]:
    """Subject, text and HTML of an e-mail, in the parent's language, as staff may see them:
    the private link to My application holds tokens.PLACEHOLDER instead of the parent's token
    (tokens.with_token puts it in when sending). ``options``: the edition's options by code
    (results.edition_options), when sending many."""
    assert email.application is not None
    application = email.application
    context: dict[str, Any] = {
        "application": application,
        "link": my_application_url(application.number, email.language, token=PLACEHOLDER),
        "office_phone": settings.OFFICE_PHONE,
        "site_url": settings.SITE_URL,
    }
    if email.kind in (
        OutboxEmail.Kind.RESULT,
        OutboxEmail.Kind.PROMOTED,
        OutboxEmail.Kind.CHILDCARE_GRANTED,
    ):
        context.update(result_context(application, options=options))
    with translation.override(email.language):
        subject = " ".join(render_to_string(f"emails/{email.kind}_subject.txt", context).split())
        # Name the seminar, never the children's situation, so the subject is safe on a lock screen.
        prefix = gettext("[Learning spaces seminar]")
        subject = f"{prefix} {subject}"
        text = render_to_string(f"emails/{email.kind}.txt", context)
        html = render_to_string(f"emails/{email.kind}.html", context)
    return subject, text, html
