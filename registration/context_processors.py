from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import translate_url
from django.utils.translation import get_language


def office(request: HttpRequest) -> dict[str, Any]:
    """Office contact for every page, and the same page in the other language."""
    current = get_language() or settings.LANGUAGE_CODE
    other = "en" if current.startswith("ja") else "ja"
    return {
        "office_phone": settings.OFFICE_PHONE,
        "navigator_url": settings.NAVIGATOR_URL,
        "retention_days": settings.RETENTION_DAYS,
        "other_language": other,
        "other_language_name": "English" if other == "en" else "日本語",
        "other_language_url": translate_url(request.get_full_path(), other),
    }
