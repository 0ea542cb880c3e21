"""Every public form, posted with generated input: valid, and hostile.

Hostile input is what a phone, a copy-paste or a script can send: very long strings, control
characters (NUL, line breaks), lists where one value is expected, text where a number is, ids
that do not exist, missing and extra fields, and text in every script a parent in Tokyo may
type (kanji, hiragana, katakana, half-width kana, full-width digits, emoji, right-to-left text,
zero-width joiners). Lone surrogates are left out: they cannot travel in an HTTP request.

For every post:

1. the answer is never a server error (5xx);
2. a refused post (the form again with its errors, or 400/403/404/405/429) saves nothing:
   Application, Child, OutboxEmail, DuplicateFlag and AuditEvent keep their counts;
3. an accepted post saves clean data (no control characters, normalised phone and kana,
   lengths within the columns);
4. generated valid input goes through to the completion page, so that rejecting everything
   cannot pass.

Each Hypothesis example runs in its own transaction (hypothesis.extra.django.TestCase), with a
fresh client, so examples do not see each other's applications or session.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.db import models
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from childcare.models import Child
from lottery import services as lottery_services
from registration import municipalities
from registration.forms import ApplicationForm
from registration.models import (
    GRADE_CHOICES,
    Application,
    AuditEvent,
    Booth,
    DuplicateFlag,
    Edition,
    OutboxEmail,
)
from registration.normalize import to_katakana
from registration.outbox import send as outbox_mail
from registration.tokens import make_token
from tests.factories import ApplicationFactory, EditionFactory, option
from tests.lottery import drawn

from .helpers import form_data


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    """Hundreds of posts from one address: the limits would answer 429 long before the end."""
    settings.RATELIMIT_ENABLE = False


def fuzz(max_examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


# --- What a hostile client sends --------------------------------------------------------------

CONTROLS = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1f\x7f\x85\x9f\u2028\u2029"
# Not whitespace to str.split(): these survive every tidying and must be refused.
HARD_CONTROLS = "\x00\x01\x07\x08\x1b\x7f\x9f"
SCRIPTS = (
    "山田花子東京都八王子髙﨑"  # kanji, including 異体字
    "やまだはなこゔ"  # hiragana
    "ヤマダハナコヴー・"  # katakana
    "ﾔﾏﾀﾞﾊﾅｺｶﾞﾊﾟｰﾞﾟ"  # half-width kana, with lone (han)dakuten
    "０１２３４５６７８９"  # full-width digits
    "ＡＢＣａｂｃ＠．－　"  # full-width Latin and the ideographic space
    "😀👨‍👩‍👧🇯🇵"  # emoji, a ZWJ sequence, a flag
    "\u200b\u200c\u200d\ufeff"  # zero-width space, non-joiner, joiner, BOM
    "עברית العربية\u200f\u202e"  # right-to-left text, RLM, RLO
    "㌀﷽ﬀ"  # one character that NFKC turns into several
    "٠١٢٣٤٥٦٧٨٩"  # Arabic-Indic digits: \d, but not digits for a phone
    "abcXYZ019@.-+_ '\"<>&;%{}/\\"
)

hostile_char = st.one_of(
    st.sampled_from(SCRIPTS + CONTROLS), st.characters(exclude_categories=["Cs"])
)
short_text = st.text(hostile_char, max_size=40)
long_text = st.builds(
    lambda s, n: s * n, st.text(hostile_char, min_size=1, max_size=4), st.integers(60, 5000)
)
line_break_text = st.lists(
    st.sampled_from(["\r\n", "\n", "\r", "\x00", "名前", "ﾅﾏｴ", "😀", " ", "\t", "a"]), max_size=20
).map("".join)
number_text = st.one_of(
    st.integers(-(2**80), 2**80).map(str),
    st.floats().map(str),
    st.sampled_from(
        ["-1", "0", "1.5", "1e309", "NaN", "-Infinity", "１", "٣", "0x10", "1_0", " 1", "9" * 40]
    ),
)
missing_id = st.integers(10**7, 2**70).map(str)
scalar = st.one_of(short_text, long_text, line_break_text, number_text, missing_id)
hostile_value = st.one_of(scalar, st.lists(scalar, min_size=2, max_size=4))


@st.composite
def emailish(draw: st.DrawFn) -> str:
    parts = st.text(st.sampled_from("ab0.-+_@＠．ｊｐ㌀ﬀ😀\u200d\x00 "), min_size=1, max_size=12)
    local = draw(parts)
    labels = draw(st.lists(parts, min_size=1, max_size=9))
    return local + "@" + ".".join(labels)


phoneish = st.text(
    st.sampled_from("0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩-ー()+ \u3000"),
    min_size=8,
    max_size=16,
).map(lambda s: "0" + s)
kanaish = st.text(st.sampled_from("やまだヤマダﾔﾏﾀﾞｶﾞﾞﾟー・ 　\u3000\n\x00山A😀"), max_size=30)
dateish = st.one_of(
    st.builds(
        lambda d, fmt: d.strftime(fmt),
        st.dates(min_value=dt.date(1000, 1, 1)),
        st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%d/%m/%Y"]),
    ),
    st.sampled_from(
        ["2020-02-30", "0000-01-01", "0001-01-01", "10000-01-01", "２０２２ー０４ー０１"]
    ),
)

# Every name the application form posts: the form's own fields, then its children formset.
APPLICATION_FIELDS = [
    *ApplicationForm.base_fields,
    "child-TOTAL_FORMS",
    "child-INITIAL_FORMS",
    "child-MIN_NUM_FORMS",
    "child-MAX_NUM_FORMS",
    *(f"child-{i}-{f}" for i in range(3) for f in ("name", "name_kana", "date_of_birth", "notes")),
]
TAILORED: dict[str, st.SearchStrategy[str]] = {
    "email": emailish(),
    "email_confirm": emailish(),
    "phone": phoneish,
    "family_name_kana": kanaish,
    "given_name_kana": kanaish,
    **{f"child-{i}-name_kana": kanaish for i in range(3)},
    **{f"child-{i}-date_of_birth": dateish for i in range(3)},
}


class Drop:
    """Leave the field out of the post."""

    def __repr__(self) -> str:
        return "DROP"


DROP = Drop()


# A checkbox is ticked by any value but "false" (Django's CheckboxInput): "0" ticks it too.
UNTICKED = [DROP, "", "false", "False", "FALSE"]
TICKED = ["on", "0", "1", "true", "yes", "はい"]


@dataclass(frozen=True)
class Ref:
    """A value known only in the test's database, such as another edition's option."""

    name: str


# NFKC turns these 81 characters into 291: longer than the e-mail column (254).
LONG_AFTER_NFKC = "a@" + ".".join(["㌀" * 10] * 7) + ".jp"


@dataclass(frozen=True)
class Post:
    """Changes to a valid post; ``must_fail`` says why the result must be refused, if it must."""

    changes: tuple[tuple[str, Any], ...] = ()
    must_fail: str = ""
    urlencoded: bool = False

    def apply(self, data: dict[str, Any], refs: dict[str, Any] | None = None) -> dict[str, Any]:
        data = dict(data)
        for name, value in self.changes:
            if value is DROP:
                data.pop(name, None)
            else:
                data[name] = (refs or {})[value.name] if isinstance(value, Ref) else value
        return data


def field_value(name: str) -> st.SearchStrategy[Any]:
    tailored = TAILORED.get(name)
    others = st.one_of(hostile_value, st.just(DROP))
    return others if tailored is None else st.one_of(tailored, others)


@st.composite
def may_pass_change(draw: st.DrawFn, exclude: frozenset[str]) -> tuple[str, Any]:
    name = draw(
        st.one_of(st.sampled_from(APPLICATION_FIELDS), st.text(min_size=1, max_size=30)).filter(
            lambda n: n not in exclude
        )
    )
    return name, draw(field_value(name))


def _with_control(draw: st.DrawFn, name: str, controls: str) -> tuple[str, str]:
    return name, "山" + draw(st.sampled_from(controls)) + "田"


@st.composite
def must_fail_change(draw: st.DrawFn, email_fixed: bool) -> tuple[str, tuple[str, Any], set[str]]:
    """One change that no other change can make acceptable: (why, change, fields it rules)."""
    kinds = [
        "missing",
        "control",
        "nul_in_text",
        "choice_unknown",
        "choice_of_other_edition",
        "party",
        "too_long",
        "municipality",
        "no_consent",
        "grade",
    ]
    if not email_fixed:
        kinds.append("emails_differ")
    kind = draw(st.sampled_from(kinds))
    required = [
        "choice_1",
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "phone",
        "municipality",
        "grades",
        "adults",
        "children",
        "privacy_consent",
        "child-TOTAL_FORMS",
        "child-INITIAL_FORMS",
    ]
    if kind == "missing":
        name = draw(st.sampled_from(required + ([] if email_fixed else ["email", "email_confirm"])))
        change: tuple[str, Any] = (name, draw(st.sampled_from([DROP, "", "   ", "\u3000"])))
        if name in ("child-TOTAL_FORMS", "child-INITIAL_FORMS", "privacy_consent"):
            change = (name, DROP)
    elif kind == "control":
        lines = ["family_name", "given_name", "phone", "child-0-name"]
        if not email_fixed:
            lines += ["email", "email_confirm"]
        kana = ["family_name_kana", "given_name_kana", "child-0-name_kana"]
        name = draw(st.sampled_from(lines + kana))
        # Kana is tidied with str.split(), which turns line breaks into spaces: only controls
        # that are not whitespace are certain to be refused there.
        change = _with_control(draw, name, HARD_CONTROLS if name in kana else CONTROLS)
        if name.startswith("email"):
            change = (name, "hana\x00ko@example.jp")
    elif kind == "nul_in_text":
        name = draw(st.sampled_from(["needs_other", "questions", "child-0-notes"]))
        change = _with_control(draw, name, HARD_CONTROLS)
    elif kind == "choice_unknown":
        change = (
            "choice_1",
            draw(st.one_of(missing_id, st.sampled_from(["-1", "0", "abc", "1.0", "１"]))),
        )
    elif kind == "choice_of_other_edition":
        change = ("choice_1", Ref("other_edition_option"))
    elif kind == "party":
        name = draw(st.sampled_from(["adults", "children"]))
        valid = {"adults": {"1", "2"}, "children": {"0", "1", "2", "3"}}[name]
        change = (name, draw(number_text.filter(lambda v: v not in valid)))
    elif kind == "too_long":
        name = draw(st.sampled_from(["family_name", "given_name"]))
        change = (name, "山" * draw(st.integers(51, 3000)))
    elif kind == "municipality":
        keys = set(municipalities.by_key())
        change = ("municipality", draw(short_text.filter(lambda v: v not in keys)))
    elif kind == "no_consent":
        change = ("privacy_consent", draw(st.sampled_from(UNTICKED)))
    elif kind == "grade":
        codes = {c for c, _label in GRADE_CHOICES}
        change = ("grades", draw(short_text.filter(lambda v: v not in codes)))
    else:  # emails_differ
        change = ("email_confirm", "someone-else@example.jp")
    ruled = {change[0]}
    if kind == "emails_differ":
        ruled.add("email")
    if change[0].startswith("child-"):
        # Fewer rows in the management form would drop the row with the bad value.
        ruled.update(f"child-{f}_FORMS" for f in ("TOTAL", "INITIAL", "MIN_NUM", "MAX_NUM"))
    return kind, change, ruled


@st.composite
def hostile_posts(draw: st.DrawFn, email_fixed: bool = False) -> Post:
    """Some changes that may or may not be acceptable, then perhaps one that cannot be."""
    must_fail, ruled = "", set[str]()
    last: list[tuple[str, Any]] = []
    if draw(st.booleans()):
        must_fail, change, ruled = draw(must_fail_change(email_fixed))
        last = [change]
    changes = draw(st.lists(may_pass_change(frozenset(ruled)), max_size=5))
    return Post((*changes, *last), must_fail, draw(st.booleans()))


# --- What a parent sends ----------------------------------------------------------------------

KANJI = "山田佐藤鈴木高橋髙﨑花子太郎一二三東京"
HIRAGANA = "".join(chr(c) for c in range(0x3041, 0x3097))
KATAKANA = "".join(chr(c) for c in range(0x30A1, 0x30FB))
HALF_WIDTH_KANA = [chr(c) for c in range(0xFF66, 0xFF9E)] + ["ｶﾞ", "ﾊﾟ", "ｳﾞ", "ﾎﾟ"]
NAME_CHARS = (
    KANJI + HIRAGANA[:20] + KATAKANA[:20] + "ﾊﾅｺ" + "ＡＢａｂ０１" + "AbcZ" + "😀👨‍👩‍👧🇯🇵"
    "\u200d\u200c\u200b" + "עברית العربية" + "\u200f" + " \u3000・-'"
)


def shown(name: str) -> str:
    """A name as stored: without its zero-width and direction characters, trimmed."""
    return "".join(c for c in name if unicodedata.category(c) != "Cf").strip()


# A name shows at least one letter: zero-width characters alone are refused.
name_text = st.text(st.sampled_from(NAME_CHARS), min_size=1, max_size=50).filter(
    lambda s: (
        0 < len(shown(s)) <= 50
        and any(not c.isspace() and unicodedata.category(c) != "Cf" for c in s)
    )
)
kana_text = (
    st.lists(
        st.sampled_from([*HIRAGANA, *KATAKANA, *HALF_WIDTH_KANA, "ー", "・", " ", "\u3000"]),
        min_size=1,
        max_size=40,
    )
    .map("".join)
    .filter(lambda s: bool(s.split()))
)
note_text = st.lists(
    st.sampled_from([*NAME_CHARS, "\r\n", "\n", "\t", "。", "、", "！", "？"]), max_size=80
).map("".join)

FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)} | {" ": "\u3000"})


def maybe_full_width(draw: st.DrawFn, text: str) -> str:
    return text.translate(FULL_WIDTH) if draw(st.booleans()) else text


@st.composite
def phone_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(as typed, digits stored): a mobile, a 23-ku or a Tama number, in any common spelling."""
    digits = draw(
        st.one_of(
            st.from_regex(r"0[789]0[1-9][0-9]{7}", fullmatch=True),
            st.from_regex(r"03[2-9][0-9]{7}", fullmatch=True),
            st.from_regex(r"042[2-9][0-9]{6}", fullmatch=True),
        )
    )
    sep = draw(st.sampled_from(["-", " ", "", "−", "ー", "‐"]))
    typed = sep.join([digits[:-8], digits[-8:-4], digits[-4:]])
    if draw(st.booleans()):
        typed = "+81" + sep + typed[1:]
    return maybe_full_width(draw, typed), digits


@st.composite
def emails(draw: st.DrawFn) -> tuple[str, str]:
    """(as typed, as stored): full-width letters and an upper-case domain are normalised."""
    local = draw(st.from_regex(r"[a-z0-9](?:[a-z0-9_+.-]{0,20}[a-z0-9])?", fullmatch=True))
    local = re.sub(r"\.{2,}", ".", local)
    domain = draw(st.sampled_from(["example.jp", "Example.CO.JP", "mail.example.com"]))
    typed = maybe_full_width(draw, f"{local}@{domain}")
    return typed, f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class Kid:
    name: str
    kana: str
    days_old: int  # on the day of the first session
    date_format: str
    full_width_date: bool
    notes: str


@dataclass(frozen=True)
class Entry:
    """A valid application as a parent could type it, with what must be stored."""

    choices: tuple[str, ...]
    booth_sessions: tuple[str, ...]
    kids: tuple[Kid, ...]
    fields: dict[str, Any] = field(hash=False)
    expected: dict[str, Any] = field(hash=False)
    language: str = "ja"


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    choices = draw(
        st.lists(
            st.sampled_from(["tama:venue", "tama:online", "center:venue", "center:online"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    venue = any(c.endswith(":venue") for c in choices)
    sessions = sorted({c.split(":")[0] for c in choices})
    booth_sessions = draw(st.lists(st.sampled_from(sessions), unique=True))
    kids = []
    if venue:
        for _i in range(draw(st.integers(0, 3))):
            kids.append(
                Kid(
                    name=draw(name_text),
                    kana=draw(kana_text),
                    days_old=draw(st.integers(400, 1500)),
                    date_format=draw(st.sampled_from(["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日"])),
                    full_width_date=draw(st.booleans()),
                    notes=draw(note_text),
                )
            )
    adults = draw(st.integers(1, 2))
    children = draw(st.integers(len(kids), 3))
    email, email_stored = draw(emails())
    phone, phone_stored = draw(phone_numbers())
    family_name, given_name = draw(name_text), draw(name_text)
    family_kana, given_kana = draw(kana_text), draw(kana_text)
    grades = draw(
        st.lists(st.sampled_from([c for c, _l in GRADE_CHOICES]), min_size=1, unique=True)
    )
    municipality = draw(st.sampled_from(sorted(municipalities.by_key())))
    fallback = draw(st.sampled_from(["hall", "skip"])) if kids else ""
    needs_other, questions = draw(note_text), draw(note_text)
    flags = {
        name: "on"
        for name in ("needs_sign_language", "needs_wheelchair_space")
        if draw(st.booleans())
    }
    fields = {
        "family_name": family_name,
        "given_name": given_name,
        "family_name_kana": family_kana,
        "given_name_kana": given_kana,
        "email": email,
        "email_confirm": email,
        "phone": phone,
        "municipality": municipality,
        "grades": grades,
        "adults": adults,
        "children": children,
        "childcare_fallback": fallback,
        "needs_other": needs_other,
        "questions": questions,
        **({"health_consent": "on"} if kids else {}),
        **flags,
    }
    expected = {
        "family_name": shown(family_name),
        "given_name": shown(given_name),
        "family_name_kana": to_katakana(family_kana),
        "given_name_kana": to_katakana(given_kana),
        "email": email_stored,
        "phone": phone_stored,
        "municipality": municipality,
        "grade_codes": sorted(grades),
        "adults": adults if venue else 1,
        "children": children if venue else 0,
        "childcare_fallback": fallback,
        "needs_other": needs_other.strip(),
        "questions": questions.strip(),
        "needs_sign_language": "needs_sign_language" in flags,
        "needs_wheelchair_space": "needs_wheelchair_space" in flags,
    }
    return Entry(
        choices=tuple(choices),
        booth_sessions=tuple(booth_sessions),
        kids=tuple(kids),
        fields=fields,
        expected=expected,
        language=draw(st.sampled_from(["ja", "en"])),
    )


# --- Checks -----------------------------------------------------------------------------------

COUNTED: tuple[type[models.Model], ...] = (
    Application,
    Child,
    OutboxEmail,
    DuplicateFlag,
    AuditEvent,
)
REFUSED_STATUSES = {400, 403, 404, 405, 410, 413, 429}
LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
KATAKANA_ONLY = re.compile(r"[ァ-ヺー・ 　]+")
PHONE = re.compile(r"0[0-9]{9,10}")


def counts() -> dict[str, int]:
    return {m.__name__: m._default_manager.count() for m in COUNTED}


def assert_no_server_error(response: Any) -> None:
    if response.status_code >= 500:
        exc_info = getattr(response, "exc_info", None)
        detail = "".join(traceback.format_exception(*exc_info)) if exc_info else ""
        raise AssertionError(f"{response.status_code} for {response.request}\n{detail}")


def shows_errors(response: Any) -> bool:
    """The form again with its errors, or a 4xx refusal."""
    if response.status_code in REFUSED_STATUSES:
        return True
    if response.status_code != 200 or response.context is None:
        return False
    form = response.context.get("form")
    children = response.context.get("children")
    return bool(form is not None and form.errors) or bool(
        children is not None and children.total_error_count()
    )


def post(client: Client, url: str, data: dict[str, Any], urlencoded: bool = False) -> Any:
    if urlencoded:
        body = urlencode(data, doseq=True)
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(url, data)
    assert_no_server_error(response)
    return response


def assert_stored_cleanly(application: Application) -> None:
    """Whatever got through is what the rest of the system expects to read."""
    values = {f.name: getattr(application, f.attname) for f in Application._meta.concrete_fields}
    for f in Application._meta.concrete_fields:
        value = values[f.name]
        if isinstance(value, str) and f.max_length:
            assert len(value) <= f.max_length, (f.name, len(value))
    for name in ("family_name", "given_name", "email", "phone", "municipality", "grades"):
        assert not LINE_CONTROL.search(values[name]), (name, values[name])
    for name in ("needs_other", "questions"):
        assert not TEXT_CONTROL.search(values[name]), (name, values[name])
    assert PHONE.fullmatch(application.phone), application.phone
    assert KATAKANA_ONLY.fullmatch(application.family_name_kana), application.family_name_kana
    assert KATAKANA_ONLY.fullmatch(application.given_name_kana), application.given_name_kana
    assert application.municipality in municipalities.by_key()
    assert set(application.grade_codes) <= {c for c, _l in GRADE_CHOICES}
    sessions = {o.session_id for o in application.choices}
    assert all(b.session_id in sessions for b in application.booths_of_interest.all())
    for child in application.childcare_children.all():
        assert 0 < len(child.name) <= 100 and not LINE_CONTROL.search(child.name)
        assert KATAKANA_ONLY.fullmatch(child.name_kana) and len(child.name_kana) <= 100
        assert len(child.notes) <= 500 and not TEXT_CONTROL.search(child.notes)


def snapshot(application: Application) -> tuple[object, ...]:
    application = Application.objects.get(pk=application.pk)
    return (
        {f.attname: getattr(application, f.attname) for f in Application._meta.concrete_fields},
        list(application.childcare_children.values_list("name", "name_kana", "date_of_birth")),
        sorted(application.booths_of_interest.values_list("pk", flat=True)),
    )


class FuzzCase(TestCase):
    """Hypothesis runs each example in its own transaction (setUpTestData's rows stay)."""

    browser: Client

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # One client for every example: each new client loads the middleware again, and
        # WhiteNoise then scans the static files.
        cls.browser = Client(raise_request_exception=False)

    def fresh_client(self) -> Client:
        """The client without cookies: every example starts a new session."""
        self.browser.cookies.clear()
        return self.browser


class FormCase(FuzzCase):
    edition: Edition
    other_edition: Edition

    @classmethod
    def setUpTestData(cls) -> None:
        cls.edition = EditionFactory.create()
        # Real ids that this edition's form must not accept.
        cls.other_edition = EditionFactory.create()

    def refs(self) -> dict[str, Any]:
        return {"other_edition_option": option(self.other_edition, "tama:venue").pk}

    def entry_post(self, entry: Entry) -> dict[str, Any]:
        chosen = [option(self.edition, c).pk for c in entry.choices] + ["", ""]
        data = form_data(
            self.edition,
            choice_1=chosen[0],
            choice_2=chosen[1],
            choice_3=chosen[2],
            **entry.fields,
        )
        data["booths"] = [
            Booth.objects.get(session__edition=self.edition, session__code=code).pk
            for code in entry.booth_sessions
        ]
        first_session = self.edition.sessions.order_by("date").first()
        assert first_session is not None
        for i, kid in enumerate(entry.kids):
            born = first_session.date - dt.timedelta(days=kid.days_old)
            date = born.strftime(kid.date_format)
            data[f"child-{i}-name"] = kid.name
            data[f"child-{i}-name_kana"] = kid.kana
            data[f"child-{i}-date_of_birth"] = (
                date.translate(FULL_WIDTH) if kid.full_width_date else date
            )
            data[f"child-{i}-notes"] = kid.notes
        return data

    def assert_stored_as_entered(
        self, application: Application, entry: Entry, *, unchanged: tuple[str, ...] = ()
    ) -> None:
        for name, value in entry.expected.items():
            if name not in unchanged:
                assert getattr(application, name) == value, (name, getattr(application, name))
        assert [o.code for o in application.choices] == list(entry.choices)
        assert sorted(b.session.code for b in application.booths_of_interest.all()) == sorted(
            entry.booth_sessions
        )
        children = list(application.childcare_children.order_by("position"))
        assert [(c.name, c.name_kana, c.notes) for c in children] == [
            (shown(k.name), to_katakana(k.kana), k.notes.strip()) for k in entry.kids
        ]
        assert_stored_cleanly(application)


# --- 入力 → 確認 → 完了 ------------------------------------------------------------------------


class ApplyTests(FormCase):
    def urls(self, language: str = "ja") -> tuple[str, str, str]:
        prefix = "/en" if language == "en" else ""
        base = f"{prefix}/{self.edition.code}/apply/"
        return base, f"{base}confirm/", f"{base}done/"

    @fuzz(80)
    @given(entry=entries())
    def test_it_accepts_every_valid_application_and_stores_it_normalised(
        self, entry: Entry
    ) -> None:
        client = self.fresh_client()
        input_url, confirm_url, done_url = self.urls(entry.language)
        before = counts()
        response = post(client, input_url, self.entry_post(entry))
        assert response.status_code == 302, response.context and (
            response.context["form"].errors,
            response.context["children"].errors,
        )
        assert response["Location"] == confirm_url
        check = client.get(confirm_url)
        assert check.status_code == 200
        response = post(client, confirm_url, {})
        assert response["Location"] == done_url
        assert client.get(done_url).status_code == 200
        after = counts()
        assert after == {
            **before,
            "Application": before["Application"] + 1,
            "Child": before["Child"] + len(entry.kids),
            "OutboxEmail": before["OutboxEmail"] + 1,  # the receipt
            "AuditEvent": before["AuditEvent"] + 1,
        }
        application = Application.objects.get(edition=self.edition)
        assert application.language == entry.language
        self.assert_stored_as_entered(application, entry)

    @fuzz(100)
    @given(case=hostile_posts())
    @example(Post((("email", LONG_AFTER_NFKC), ("email_confirm", LONG_AFTER_NFKC))))
    @example(Post((("phone", "0٩٠١٢٣٤٥٦٧٨"),)))  # Arabic-Indic digits match \d
    @example(Post((("choice_1", str(2**64)),), must_fail="choice_unknown"))
    @example(Post((("family_name", "山\x00田"),), must_fail="control", urlencoded=True))
    def test_it_refuses_hostile_input_without_saving_and_never_fails(self, case: Post) -> None:
        client = self.fresh_client()
        input_url, confirm_url, done_url = self.urls()
        before = counts()
        response = post(
            client, input_url, case.apply(form_data(self.edition), self.refs()), case.urlencoded
        )
        accepted = response.status_code == 302 and response["Location"] == confirm_url
        event("accepted" if accepted else f"refused {response.status_code}")
        assert accepted or shows_errors(response), response.status_code
        if case.must_fail:
            assert not accepted, case.must_fail
        assert counts() == before  # 入力 never saves
        # A script sends 送信 whatever the answer was.
        response = post(client, confirm_url, {"extra": "送信", "choice_1": "1"})
        if accepted:
            assert response["Location"] == done_url
            application = Application.objects.get(edition=self.edition)
            assert counts()["Application"] == before["Application"] + 1
            assert_stored_cleanly(application)
        else:
            assert response["Location"] == input_url
            assert counts() == before


# --- My application: change and withdraw ------------------------------------------------------


class MyApplicationTests(FormCase):
    application: Application
    token: str

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.application = ApplicationFactory.create(edition=cls.edition)
        cls.token = make_token(cls.application.number)

    def url(self, name: str) -> str:
        return reverse(f"registration:{name}", kwargs={"token": self.token})

    @fuzz(60)
    @given(entry=entries())
    def test_it_saves_every_valid_change(self, entry: Entry) -> None:
        client = self.fresh_client()
        before = counts()
        data = self.entry_post(entry)
        response = post(client, self.url("my_application_edit"), data)
        assert response.status_code == 302, response.context and response.context["form"].errors
        assert response["Location"] == self.url("my_application")
        assert client.get(response["Location"]).status_code == 200
        after = counts()
        assert after["Application"] == before["Application"]
        assert after["OutboxEmail"] == before["OutboxEmail"] + 1
        assert after["AuditEvent"] == before["AuditEvent"] + 1
        application = Application.objects.get(pk=self.application.pk)
        assert application.email == self.application.email  # not changed here
        self.assert_stored_as_entered(application, entry, unchanged=("email",))

    @fuzz(100)
    @given(case=hostile_posts(email_fixed=True))
    @example(Post((("phone", "0٩٠١٢٣٤٥٦٧٨"),)))
    @example(Post((("needs_other", "a\x00b"),), must_fail="nul_in_text"))
    def test_it_refuses_a_hostile_change_without_touching_the_application(self, case: Post) -> None:
        client = self.fresh_client()
        before, stored = counts(), snapshot(self.application)
        data = case.apply(form_data(self.edition), self.refs())
        response = post(client, self.url("my_application_edit"), data, case.urlencoded)
        if response.status_code == 302:
            assert not case.must_fail, case.must_fail
            assert response["Location"] == self.url("my_application")
            assert_stored_cleanly(Application.objects.get(pk=self.application.pk))
        else:
            assert shows_errors(response), response.status_code
            assert counts() == before
            assert snapshot(self.application) == stored

    @fuzz(60)
    @given(
        confirm=st.one_of(
            st.sampled_from(UNTICKED),
            st.sampled_from(TICKED),
            hostile_value,
        ),
        extra=st.dictionaries(st.text(min_size=1, max_size=20), hostile_value, max_size=4),
        urlencoded=st.booleans(),
    )
    def test_it_withdraws_only_when_the_box_is_ticked(
        self, confirm: Any, extra: dict[str, Any], urlencoded: bool
    ) -> None:
        client = self.fresh_client()
        before = counts()
        data = {k: v for k, v in extra.items() if k != "confirm"}
        if confirm is not DROP:
            data["confirm"] = confirm
        response = post(client, self.url("my_application_withdraw"), data, urlencoded)
        application = Application.objects.get(pk=self.application.pk)
        if confirm in UNTICKED:
            assert shows_errors(response)
        if confirm in TICKED:
            assert response.status_code == 302
        if response.status_code == 302:
            assert response["Location"] == self.url("my_application")
            assert application.status == Application.Status.WITHDRAWN
            assert counts() == {
                **before,
                "OutboxEmail": before["OutboxEmail"] + 1,
                "AuditEvent": before["AuditEvent"] + 1,
            }
        else:
            assert shows_errors(response), response.status_code
            assert application.status == Application.Status.ACTIVE
            assert counts() == before

    @fuzz(100)
    @given(
        token=st.one_of(
            st.text(hostile_char, min_size=1, max_size=80),
            st.from_regex(r"[2-9A-Z]{8}:[0-9a-zA-Z]{6}:[-_0-9a-zA-Z]{10,50}", fullmatch=True),
        ),
        route=st.sampled_from(
            [
                "my_application",
                "my_application_edit",
                "my_application_withdraw",
                "my_ticket",
                "my_calendar",
            ]
        ),
        method=st.sampled_from(["get", "post"]),
    )
    @example(token="\x00", route="my_application_withdraw", method="post")
    @example(token=".", route="my_application", method="get")
    def test_a_garbage_link_gets_a_404_page(self, token: str, route: str, method: str) -> None:
        client = self.fresh_client()
        before = counts()
        url = reverse(f"registration:{route}", kwargs={"token": "TOKEN"})
        url = url.replace("TOKEN", quote(token, safe=""))
        if method == "get":
            response = client.get(url)
        else:
            response = client.post(url, {"confirm": "on", **form_data(self.edition)})
        assert_no_server_error(response)
        # NUL in the address is refused before any view (seminar_site.security).
        expected = (400,) if "\x00" in token else (404, 405)
        assert response.status_code in expected, response.status_code
        assert counts() == before

    @fuzz(50)
    @given(
        position=st.integers(0, 200),
        replacement=st.text(hostile_char, max_size=3),
        cut=st.booleans(),
    )
    def test_a_tampered_link_gets_a_404_page(
        self, position: int, replacement: str, cut: bool
    ) -> None:
        token = self.token
        position %= len(token)
        tampered = token[:position] + replacement + ("" if cut else token[position + 1 :])
        if tampered == token or "/" in tampered or not tampered:
            return
        client = self.fresh_client()
        url = reverse("registration:my_application", kwargs={"token": "TOKEN"})
        response = client.get(url.replace("TOKEN", quote(tampered, safe="")))
        assert_no_server_error(response)
        # NUL in the address is refused before any view (seminar_site.security).
        assert response.status_code == (400 if "\x00" in tampered else 404)

    def test_a_link_signed_for_no_application_gets_a_404_page(self) -> None:
        token = make_token("ZZZZ2222")
        response = self.client.get(reverse("registration:my_application", args=[token]))
        assert response.status_code == 404


# --- E-mail me my link again ------------------------------------------------------------------


class ResendLinkTests(FormCase):
    application: Application

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.application = ApplicationFactory.create(edition=cls.edition, email="known@example.jp")

    @fuzz(100)
    @given(
        email=st.one_of(
            st.sampled_from(
                ["known@example.jp", "KNOWN@EXAMPLE.JP", "ｋｎｏｗｎ＠ｅｘａｍｐｌｅ．ｊｐ"]
            ),
            emails().map(lambda e: e[0]),
            emailish(),
            hostile_value,
            st.just(DROP),
        ),
        extra=st.dictionaries(st.text(min_size=1, max_size=20), hostile_value, max_size=4),
        urlencoded=st.booleans(),
    )
    @example(email=LONG_AFTER_NFKC, extra={}, urlencoded=False)
    @example(email="known\x00@example.jp", extra={}, urlencoded=True)
    def test_it_sends_the_link_only_to_the_known_address_and_refuses_garbage(
        self, email: Any, extra: dict[str, Any], urlencoded: bool
    ) -> None:
        client = self.fresh_client()
        before = counts()
        data = {k: v for k, v in extra.items() if k != "email"}
        if email is not DROP:
            data["email"] = email
        response = post(client, reverse("registration:resend_link"), data, urlencoded)
        after = counts()
        sent = "registration/resend_link_sent.html" in [t.name for t in response.templates]
        posted = email[-1] if isinstance(email, list) else email  # the form reads the last
        typed = "" if posted is DROP else unicodedata.normalize("NFKC", posted.strip())
        known = typed.lower() == "known@example.jp"
        if known:
            assert sent, response.status_code
        if "@" not in typed:
            assert not sent
        if sent:
            assert response.status_code == 200
            # Known or not, the request is queued the same way; the mail worker finds the
            # application, or deletes the request.
            assert after["OutboxEmail"] - before["OutboxEmail"] == 1
            assert after["AuditEvent"] == before["AuditEvent"]
            outbox_mail.outbox_drain()
            after = counts()
            assert after["OutboxEmail"] - before["OutboxEmail"] == (1 if known else 0)
            assert after["AuditEvent"] - before["AuditEvent"] == (1 if known else 0)
            if known:
                link = OutboxEmail.objects.get(kind=OutboxEmail.Kind.LINK)
                assert link.application_id == self.application.pk
                assert link.status == OutboxEmail.Status.SENT
            assert {k: after[k] for k in ("Application", "Child", "DuplicateFlag")} == {
                k: before[k] for k in ("Application", "Child", "DuplicateFlag")
            }
        else:
            assert shows_errors(response), response.status_code
            assert after == before


# --- Any post body at all ---------------------------------------------------------------------


class GarbageBodyTests(FormCase):
    application: Application

    @classmethod
    def setUpTestData(cls) -> None:
        super().setUpTestData()
        cls.application = ApplicationFactory.create(edition=cls.edition)

    @fuzz(80)
    @given(
        target=st.sampled_from(["apply", "confirm", "resend", "change", "withdraw"]),
        body=st.one_of(
            st.binary(max_size=2000), st.text(hostile_char, max_size=500).map(str.encode)
        ),
        content_type=st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=shift_jis",
                "application/x-www-form-urlencoded; charset=no-such-charset",
                "multipart/form-data; boundary=xyz",
                "multipart/form-data",
                "text/plain",
                "application/json",
            ]
        ),
    )
    def test_no_request_body_breaks_a_form(
        self, target: str, body: bytes, content_type: str
    ) -> None:
        token = make_token(self.application.number)
        url = {
            "apply": reverse("registration:apply_input", args=[self.edition.code]),
            "confirm": reverse("registration:apply_confirm", args=[self.edition.code]),
            "resend": reverse("registration:resend_link"),
            "change": reverse("registration:my_application_edit", kwargs={"token": token}),
            "withdraw": reverse("registration:my_application_withdraw", kwargs={"token": token}),
        }[target]
        client = self.fresh_client()
        before = counts()
        # generic(): the body goes as it is, not re-encoded in the charset named.
        response = client.generic("POST", url, body, content_type=content_type)
        assert_no_server_error(response)
        if response.status_code != 302 or target in ("apply", "confirm"):
            assert counts() == before

    @fuzz(60)
    @example(session="\x00" * 8)  # reached PostgreSQL, which refuses NUL: a 500
    # A header reaches Django as latin-1 (WSGI), whatever bytes the client sent.
    @given(session=st.text(st.characters(codec="latin-1"), min_size=1, max_size=300))
    def test_a_forged_session_cookie_is_no_session(self, session: str) -> None:
        client = self.fresh_client()
        client.cookies["sessionid"] = session
        before = counts()
        for url in (
            reverse("registration:apply_input", args=[self.edition.code]),
            reverse("registration:apply_confirm", args=[self.edition.code]),
        ):
            assert_no_server_error(client.get(url))
        assert_no_server_error(client.post(url, {}))
        assert counts() == before

    @fuzz(30)
    @given(
        code=st.from_regex(r"[-a-zA-Z0-9_]{1,40}", fullmatch=True),
        step=st.sampled_from(["", "confirm/", "done/"]),
    )
    def test_an_unknown_edition_gets_a_404_page(self, code: str, step: str) -> None:
        if code in {self.edition.code, self.other_edition.code, "admin", "en", "my", "lottery"}:
            return  # a real edition, or another part of the site
        client = self.fresh_client()
        before = counts()
        response = client.post(f"/{code}/apply/{step}", form_data(self.edition))
        assert response.status_code in (404, 405)
        assert counts() == before


# --- The public lottery page: the search by application number --------------------------------


class LotterySearchTests(FuzzCase):
    edition: Edition

    @classmethod
    def setUpTestData(cls) -> None:
        cls.edition = drawn.closed_edition()
        ApplicationFactory.create_batch(3, edition=cls.edition)
        lottery_services.lottery_freeze(edition=cls.edition, actor=None, actor_label="staff")
        lottery_services.lottery_draw(
            edition=cls.edition, actor=None, actor_label="staff", randomness="x"
        )

    @fuzz(60)
    @given(
        params=st.dictionaries(
            st.one_of(st.sampled_from(["number", "page"]), st.text(min_size=1, max_size=10)),
            st.one_of(scalar, st.lists(scalar, min_size=2, max_size=3)),
            max_size=4,
        )
    )
    @example(params={"number": "\x00"})
    @example(params={"number": "ABC\x00DEF", "page": "9" * 5000})
    def test_any_search_gets_the_results_page(self, params: dict[str, Any]) -> None:
        client = self.fresh_client()
        before = counts()
        response = client.get(reverse("lottery:public", args=[self.edition.code]), params)
        assert_no_server_error(response)
        # NUL anywhere in the query is refused before any view (seminar_site.security).
        values = [
            v for value in params.values() for v in (value if isinstance(value, list) else [value])
        ]
        nul = any("\x00" in str(text) for text in [*params, *values])
        assert response.status_code == (400 if nul else 200)
        assert counts() == before
