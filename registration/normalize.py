"""Turning what parents type on a phone into clean, comparable values."""

from __future__ import annotations

import re
import unicodedata

import idna
import jaconv
import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

_KATAKANA = re.compile(r"^[ァ-ヺー・ 　]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Japanese mobile carriers issued addresses that break RFC 5322 (consecutive dots, a dot
# before the @). They are real and deliverable, so they are accepted for these domains.
LEGACY_CARRIER_DOMAINS = frozenset(
    {
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "disney.ne.jp",
        "d.vodafone.ne.jp",
        "h.vodafone.ne.jp",
        "t.vodafone.ne.jp",
        "c.vodafone.ne.jp",
        "k.vodafone.ne.jp",
        "r.vodafone.ne.jp",
        "n.vodafone.ne.jp",
        "s.vodafone.ne.jp",
        "q.vodafone.ne.jp",
        "pdx.ne.jp",
        "willcom.com",
        "emnet.ne.jp",
    }
)
_LEGACY_LOCAL = re.compile(r"^[A-Za-z0-9._\-+?/]{1,64}$")


def reject_control_characters(value: str) -> None:
    if _CONTROL.search(value or ""):
        raise ValidationError(
            _("Please remove line breaks and other control characters."), code="control_characters"
        )


# Letters that draw nothing (Hangul fillers, the blank Braille pattern) beside the categories of
# format, control, separator and combining characters: a name made only of these is no name.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Mn", "Me", "Zl", "Zp", "Zs"})


def strip_format_characters(value: str) -> str:
    """``value`` without format characters (Unicode category Cf: zero-width spaces and joiners,
    direction marks, the byte-order mark)."""
    return "".join(c for c in value if unicodedata.category(c) != "Cf")


def reject_invisible_only(value: str) -> None:
    """Refuse a text that shows nothing: zero-width spaces, fillers, combining marks alone."""
    if value and not any(
        c not in _BLANK_LETTERS and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
        for c in value
    ):
        raise ValidationError(
            _("This shows no letters. Please write it with letters you can see."),
            code="invisible",
        )


def to_katakana(value: str) -> str:
    """Hiragana and half-width kana become full-width katakana; spaces are tidied."""
    value = unicodedata.normalize("NFKC", value or "")  # half-width kana → full-width
    value = jaconv.hira2kata(value)
    return " ".join(value.split())


def validate_katakana(value: str) -> None:
    if not _KATAKANA.match(value):
        raise ValidationError(
            _("Please write this in katakana (hiragana is converted for you)."), code="not_katakana"
        )


def normalize_phone(value: str) -> str:
    """Digits of a Japanese phone number, e.g. '０９０-１２３４-５６７８' → '09012345678'."""
    value = unicodedata.normalize("NFKC", value or "")
    value = re.sub(r"[\s\-‐−–—ー()（）.]", "", value)
    if value.startswith("+81"):
        value = "0" + value[3:]
    # [0-9], not \d: NFKC leaves other scripts' digits (٠١٢) alone, and they are not dialable.
    if not re.fullmatch(r"0[0-9]{9,10}", value):
        raise ValidationError(
            _("Please enter a Japanese phone number of 10 or 11 digits, e.g. 090-1234-5678."),
            code="phone_format",
        )
    parsed = phonenumbers.parse(value, "JP")
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _("This phone number does not exist. Please check it."), code="phone_invalid"
        )
    return value


def normalize_email(value: str) -> str:
    """One spelling per mailbox, so that uniqueness, rate limits and duplicate checks see one
    address however it was typed: trim; NFKC on the whole address (full-width letters, ＠ and
    ．; the local part keeps its case, which compares case-insensitively everywhere); the domain
    in lower-case ASCII, an international one through IDNA 2008 (UTS #46) to its punycode
    form, so that ``例え.JP``, ``ｘｎ--r8jz45g.jp`` and ``xn--r8jz45g.jp`` are one domain. The
    ASCII form is also what is sent: Django would encode a Unicode domain with the older IDNA
    2003 rules, which send ``straße.de`` to another domain, ``strasse.de``. Then validate."""
    value = unicodedata.normalize("NFKC", (value or "").strip())
    local, _sep, domain = value.rpartition("@")
    if not local or not domain:
        raise ValidationError(
            _("Please enter an e-mail address such as name@example.jp."), code="email"
        )
    try:
        domain = mailbox_domain(domain)
    except UnicodeError as e:
        raise ValidationError(
            _("Please enter an e-mail address such as name@example.jp."), code="email"
        ) from e
    value = f"{local}@{domain}"
    # NFKC can lengthen what was typed ("㌀" is four letters): the stored address must fit the
    # 254 characters of Application.email, or saving it fails.
    if len(value) > 254:
        raise ValidationError(
            _("Please enter an e-mail address such as name@example.jp."), code="email"
        )
    if domain in LEGACY_CARRIER_DOMAINS and _LEGACY_LOCAL.match(local):
        return value
    try:
        validate_email(value)
    except ValidationError as e:
        raise ValidationError(
            _("Please enter an e-mail address such as name@example.jp."), code="email"
        ) from e
    return value


def mailbox_domain(domain: str) -> str:
    """The one spelling of a mail domain: lower-case ASCII, punycode for an international one.
    Raises UnicodeError (idna.IDNAError is one) for a domain IDNA refuses."""
    if domain.isascii():
        return domain.lower()
    return str(idna.encode(domain, uts46=True).decode("ascii"))


def display_email(address: str) -> str:
    """An address as its owner would write it: an international domain in its own letters
    (``hanako@例え.jp``), where it is stored and sent as ``hanako@xn--r8jz45g.jp``."""
    local, sep, domain = address.rpartition("@")
    if "xn--" not in domain:
        return address
    try:
        return f"{local}{sep}{idna.decode(domain)}"
    except UnicodeError:  # not punycode after all: as it is
        return address


def format_phone(digits: str) -> str:
    """Hyphenated national format for display; the stored value stays digits only."""
    try:
        parsed = phonenumbers.parse(digits, "JP")
    except phonenumbers.NumberParseException:
        return digits
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
