"""The two languages of the site, written once: which one is active, and the model fields kept
in both (``name_ja`` / ``name_en``)."""

from __future__ import annotations

from django.utils.translation import get_language


def active_language() -> str:
    """ "en" for English (/en/), "ja" for everything else: the two languages we write in."""
    return "en" if (get_language() or "ja").startswith("en") else "ja"


class Localized:
    """Pick ``<field>_ja`` or ``<field>_en`` by the active language (English falls back)."""

    def localized(self, field: str) -> str:
        value = getattr(self, f"{field}_{active_language()}", "")
        return value or getattr(self, f"{field}_ja", "")
