from __future__ import annotations

from typing import Any

from django import forms, template

from registration import municipalities
from registration.models import GRADE_LABELS, Application
from registration.normalize import display_email, format_phone
from registration.services import ApplicationInput

register = template.Library()


@register.inclusion_tag("registration/_summary.html")
def application_summary(a: Application | ApplicationInput) -> dict[str, Any]:
    """The same summary on 確認, on My application and in e-mails, for a draft or a saved one."""
    kids: list[Any]
    fallback: str
    if isinstance(a, Application):
        choices = a.choices
        kids = list(a.childcare_children.all())
        booths = list(a.booths_of_interest.select_related("session", "organisation"))
        grades = a.grade_codes
        fallback = str(a.get_childcare_fallback_display())
    else:
        choices, kids, booths, grades = a.choices, a.childcare_children, a.booths, a.grades
        fallback = (
            str(Application.Fallback(a.childcare_fallback).label) if a.childcare_fallback else ""
        )
    return {
        "a": a,
        "choices": choices,
        "kids": kids,
        "booths": booths,
        "fallback": fallback,
        "grades": [GRADE_LABELS.get(g, g) for g in grades],
        "municipality": municipalities.label(a.municipality),
        "has_venue": any(o.is_venue for o in choices),
    }


@register.filter
def error_anchor(field: forms.BoundField) -> str:
    """The id a summary link should jump to: the first box of a group of radios or boxes."""
    if isinstance(field.field.widget, forms.RadioSelect | forms.CheckboxSelectMultiple):
        return f"{field.auto_id}_0"
    return str(field.auto_id)


@register.filter
def phone(digits: str) -> str:
    """'09012345678' → '090-1234-5678', as people read and check a number."""
    return format_phone(digits)


@register.filter
def mailbox(address: str) -> str:
    """An e-mail address as its owner writes it (registration.normalize.display_email)."""
    return display_email(address or "")
