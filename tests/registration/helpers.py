from __future__ import annotations

import datetime as dt
from typing import Any

from registration.models import Edition
from tests.factories import option


def form_data(edition: Edition, **overrides: Any) -> dict[str, Any]:
    """A valid application form post: tama venue first, center online second."""
    data: dict[str, Any] = {
        "choice_1": option(edition, "tama:venue").pk,
        "choice_2": option(edition, "center:online").pk,
        "choice_3": "",
        "family_name": "山田",
        "given_name": "花子",
        "family_name_kana": "やまだ",
        "given_name_kana": "ﾊﾅｺ",
        "email": "hanako@example.jp",
        "email_confirm": "hanako@example.jp",
        "phone": "090-1234-5678",
        "municipality": "hachioji",
        "grades": ["e4", "m1"],
        "adults": 1,
        "children": 0,
        "childcare_fallback": "",
        "privacy_consent": "on",
        "child-TOTAL_FORMS": 3,
        "child-INITIAL_FORMS": 0,
        "child-MIN_NUM_FORMS": 0,
        "child-MAX_NUM_FORMS": 3,
    }
    for i in range(3):
        for f in ("name", "name_kana", "date_of_birth", "notes"):
            data[f"child-{i}-{f}"] = ""
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def with_child(
    data: dict[str, Any], born: dt.date, *, index: int = 0, name: str = "太郎", kana: str = "たろう"
) -> dict[str, Any]:
    return {
        **data,
        f"child-{index}-name": name,
        f"child-{index}-name_kana": kana,
        f"child-{index}-date_of_birth": born.isoformat(),
        f"child-{index}-notes": "卵アレルギー",
    }


def years_before(date: dt.date, years: int, days: int = 0) -> dt.date:
    return date.replace(year=date.year - years) - dt.timedelta(days=days)
