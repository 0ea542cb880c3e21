"""Tokyo's 62 municipalities (区市町村), from the CSV kept beside this module."""

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from seminar_site.i18n import active_language

CSV_PATH = Path(__file__).resolve().parent / "data" / "tokyo_municipalities.csv"


@dataclass(frozen=True)
class Municipality:
    key: str  # stable identifier stored on applications, e.g. "hachioji"
    name_ja: str
    name_en: str
    kind: str  # ward, city, town, village
    area: str  # 23ku, tama, islands

    @property
    def name(self) -> str:
        return self.name_en if active_language() == "en" else self.name_ja


@cache
def all_municipalities() -> tuple[Municipality, ...]:
    with CSV_PATH.open(encoding="utf-8") as f:
        return tuple(
            Municipality(
                key=row["name_en"].lower().replace(" ", "-"),
                name_ja=row["name_ja"],
                name_en=row["name_en"],
                kind=row["kind"],
                area=row["area"],
            )
            for row in csv.DictReader(f)
        )


@cache
def by_key() -> dict[str, Municipality]:
    return {m.key: m for m in all_municipalities()}


def choices() -> list[tuple[str, str]]:
    """Choices for a form field, labelled in the active language (evaluate per request)."""
    return [(m.key, m.name) for m in all_municipalities()]


def label(key: str) -> str:
    m = by_key().get(key)
    return m.name if m else key
