"""The application form (入力), its children formset, and the small link-resend form."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from django import forms
from django.utils import formats
from django.utils.text import format_lazy
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from childcare.models import ChildcareBand, band_for

from . import municipalities
from .models import GRADE_CHOICES, Application, Booth, Edition, Option
from .normalize import (
    normalize_email,
    normalize_phone,
    reject_control_characters,
    reject_invisible_only,
    strip_format_characters,
    to_katakana,
    validate_katakana,
)
from .services import ApplicationInput, ChildInput


class LineField(forms.CharField):
    """A one-line text: control characters and line breaks are refused, and so is a text that
    shows nothing (only zero-width or filler characters); length is bounded."""

    def __init__(self, *, max_length: int = 50, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, **kwargs)
        self.validators += [reject_control_characters, reject_invisible_only]


class NameField(LineField):
    """A person's name. Format characters (zero-width spaces and joiners, direction marks) are
    removed: they show nothing, and ``山\u200b田`` must be the same name as ``山田`` for the
    duplicate check."""

    def to_python(self, value: Any) -> str:
        return strip_format_characters(super().to_python(value) or "").strip()


class KanaField(LineField):
    def to_python(self, value: Any) -> str:
        return to_katakana(super().to_python(value) or "")

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value:
            validate_katakana(value)


class TextField(forms.CharField):
    """Free text: line breaks allowed, other control characters refused."""

    def __init__(self, *, max_length: int = 1000, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3}))
        super().__init__(max_length=max_length, required=False, **kwargs)

    def clean(self, value: Any) -> str:
        value = super().clean(value)
        reject_control_characters(value.replace("\r\n", "\n").replace("\n", "").replace("\t", ""))
        return str(value)


class DateInputField(forms.DateField):
    """A date typed as 2020-04-01, 2020/4/1 or with full-width digits, or picked from a calendar."""

    input_formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日"]
    widget = forms.DateInput(attrs={"type": "date", "autocomplete": "off"}, format="%Y-%m-%d")

    def to_python(self, value: Any) -> dt.date | None:
        if isinstance(value, str):
            value = unicodedata.normalize("NFKC", value).strip()
        return super().to_python(value)


# The largest id a database column holds: a forged larger one is refused before any query
# (SQLite cannot even bind it: OverflowError, a 500).
LARGEST_ID = 2**63 - 1


def is_id(value: Any) -> bool:
    """An id as our forms write it: ASCII digits within the database's range (int() would also
    take "１" or "٣" for 1 and 3)."""
    text = str(value)
    return text.isascii() and text.isdigit() and int(text) <= LARGEST_ID


class OptionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Option) -> str:
        return obj.label

    def to_python(self, value: Any) -> Any:
        if value not in self.empty_values and not isinstance(value, Option) and not is_id(value):
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value)


class BoothChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Booth) -> str:
        return f"{obj.session.name} {obj.number}. {obj.organisation.name}"

    def clean(self, value: Any) -> Any:
        for pk in value if isinstance(value, list | tuple) else []:
            if not is_id(pk):
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"],
                    code="invalid_pk_value",
                    params={"pk": pk},
                )
        return super().clean(value)


class ApplicationForm(forms.Form):
    choice_1 = OptionChoiceField(
        label=_("1st choice"), queryset=Option.objects.none(), empty_label=_("Please choose")
    )
    choice_2 = OptionChoiceField(
        label=_("2nd choice (optional)"),
        queryset=Option.objects.none(),
        required=False,
        empty_label=_("None"),
    )
    choice_3 = OptionChoiceField(
        label=_("3rd choice (optional)"),
        queryset=Option.objects.none(),
        required=False,
        empty_label=_("None"),
    )

    family_name = NameField(
        label=_("Family name"), widget=forms.TextInput(attrs={"autocomplete": "family-name"})
    )
    given_name = NameField(
        label=_("Given name"), widget=forms.TextInput(attrs={"autocomplete": "given-name"})
    )
    family_name_kana = KanaField(label=_("Family name in katakana (フリガナ)"), max_length=100)
    given_name_kana = KanaField(label=_("Given name in katakana (フリガナ)"), max_length=100)
    email = LineField(
        label=_("E-mail address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    email_confirm = LineField(
        label=_("E-mail address again"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    phone = LineField(
        label=_("Phone number"),
        max_length=30,
        help_text=_("Hyphens are fine. We call only about your application."),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )
    municipality = forms.ChoiceField(label=_("Municipality you live in (区市町村)"))
    grades = forms.MultipleChoiceField(
        label=_("Your children's school grades"),
        choices=GRADE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Choose every grade that applies."),
    )

    adults = forms.TypedChoiceField(
        label=_("Adults coming to the venue"), coerce=int, choices=[(1, "1"), (2, "2")], initial=1
    )
    children = forms.TypedChoiceField(
        label=_("Children coming with you"),
        coerce=int,
        initial=0,
        choices=[(n, str(n)) for n in range(4)],
        help_text=_(
            "Every child counts towards the venue's seats, whether in the hall or in childcare."
        ),
    )
    childcare_fallback = forms.ChoiceField(
        label=_("If childcare is full"),
        required=False,
        widget=forms.RadioSelect,
        choices=Application.Fallback.choices,
    )

    needs_sign_language = forms.BooleanField(
        label=_("Sign language interpretation"), required=False
    )
    needs_wheelchair_space = forms.BooleanField(label=_("Wheelchair space"), required=False)
    needs_other = TextField(label=_("Other needs (optional)"), max_length=500)
    questions = TextField(label=_("Questions for the lecturers (optional)"), max_length=1000)
    booths = BoothChoiceField(
        label=_("Booths you are interested in (optional)"),
        queryset=Booth.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    privacy_consent = forms.BooleanField(
        label=_(
            "I agree to the handling of my personal information as described in the privacy notice."
        ),
        error_messages={"required": _("Please agree to the privacy notice to apply.")},
    )
    health_consent = forms.BooleanField(
        label=_(
            "I agree that childcare staff may see my children's allergies and health "
            "notes (needed only if you book childcare)."
        ),
        required=False,
    )

    def __init__(self, *args: Any, edition: Edition, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edition = edition
        for field in self.fields.values():
            if (
                "required" not in field.error_messages
                or field.error_messages["required"]
                == forms.Field.default_error_messages["required"]
            ):
                field.error_messages["required"] = format_lazy(
                    _("Please fill in: {label}"), label=field.label
                )
        options = Option.objects.filter(session__edition=edition).select_related("session")
        for name in ("choice_1", "choice_2", "choice_3"):
            self.fields[name].queryset = options  # type: ignore[attr-defined]
        self.fields["booths"].queryset = (  # type: ignore[attr-defined]
            Booth.objects.filter(session__edition=edition)
            .select_related("session", "organisation")
            .order_by("session__date", "number")
        )
        self.fields["municipality"].choices = [  # type: ignore[attr-defined]
            ("", gettext("Please choose")),
            *municipalities.choices(),
        ]

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_email_confirm(self) -> str:
        return normalize_email(self.cleaned_data["email_confirm"])

    def clean_phone(self) -> str:
        return normalize_phone(self.cleaned_data["phone"])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        email, again = data.get("email"), data.get("email_confirm")
        if email and again and email.lower() != again.lower():
            self.add_error("email_confirm", _("The two e-mail addresses are different."))
        c1, c2, c3 = data.get("choice_1"), data.get("choice_2"), data.get("choice_3")
        if c3 and not c2:
            self.add_error("choice_3", _("Please fill in your 2nd choice before your 3rd."))
        if c2 and c2 == c1:
            self.add_error("choice_2", _("Each choice must be different."))
        if c3 and c3 in (c1, c2):
            self.add_error("choice_3", _("Each choice must be different."))
        adults, children = data.get("adults"), data.get("children")
        if adults is not None and children is not None and adults + children > 5:
            self.add_error("children", _("At most 5 people per application, children included."))
        chosen_sessions = {c.session_id for c in (c1, c2, c3) if c}
        stray = [b for b in data.get("booths", []) if b.session_id not in chosen_sessions]
        if stray:
            self.add_error(
                "booths",
                _("Please choose booths only at the sessions you applied for: %(booths)s")
                % {"booths": ", ".join(str(b.organisation.name) for b in stray)},
            )
        return data

    @property
    def chosen_options(self) -> list[Option]:
        d = self.cleaned_data
        return [c for c in (d.get("choice_1"), d.get("choice_2"), d.get("choice_3")) if c]


class ChildForm(forms.Form):
    """One child in childcare. A blank row is ignored; a started row needs name, kana, birth."""

    name = NameField(label=_("Child's name"), max_length=100, required=False)
    name_kana = KanaField(label=_("Child's name in katakana"), max_length=100, required=False)
    date_of_birth = DateInputField(
        label=_("Date of birth"), help_text=_("For example 2022-04-01."), required=False
    )
    notes = TextField(
        label=_("Allergies and notes for the childcare staff (optional)"), max_length=500
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if any(data.get(f) for f in ("name", "name_kana", "date_of_birth", "notes")):
            for name in ("name", "name_kana", "date_of_birth"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, _("Please fill this in for each child in childcare."))
        return data


class BaseChildFormSet(forms.BaseFormSet):
    """Three child rows, every one optional: a blank row is ignored, a cleared row removed."""

    def initial_form_count(self) -> int:
        return 0


ChildFormSet = forms.formset_factory(
    ChildForm, formset=BaseChildFormSet, extra=3, max_num=3, validate_max=True, absolute_max=3
)


class ApplicationFormGroup:
    """The form and the children's formset, validated together (rules that span both)."""

    def __init__(
        self,
        data: Any = None,
        *,
        edition: Edition,
        initial: dict[str, Any] | None = None,
        children_initial: list[dict[str, Any]] | None = None,
    ) -> None:
        self.edition = edition
        self.form = ApplicationForm(data, edition=edition, initial=initial)
        # Initial rows only when showing the form: a bound row must be compared with a blank one.
        self.children = ChildFormSet(
            data, prefix="child", initial=None if data is not None else children_initial
        )

    def is_valid(self) -> bool:
        self.form.is_valid()
        children_ok = self.children.is_valid()
        if children_ok and "choice_1" in self.form.cleaned_data:
            # Even when other fields have errors, so that a parent sees every problem at once.
            self._check_party_and_childcare()
        return not self.form.errors and self.children.total_error_count() == 0

    def filled_children(self) -> list[dict[str, Any]]:
        return [f.cleaned_data for f in self._filled_child_forms()]

    def _filled_child_forms(self) -> list[forms.Form]:
        return [
            f
            for f in self.children.forms
            if getattr(f, "cleaned_data", None) and f.cleaned_data.get("date_of_birth")
        ]

    def _check_party_and_childcare(self) -> None:
        form, data = self.form, self.form.cleaned_data
        venues = [o for o in form.chosen_options if o.is_venue]
        kids = self.filled_children()
        if not kids:
            return
        if not venues:
            form.add_error(
                None,
                _(
                    "Childcare is offered only at the venue. Please remove the "
                    "children from childcare or choose a venue option."
                ),
            )
            return
        if data.get("children") is not None and len(kids) > data["children"]:
            form.add_error(
                "children",
                ngettext(
                    "You booked childcare for %(n)d child: please count the child among "
                    "the children coming with you.",
                    "You booked childcare for %(n)d children: please count them among "
                    "the children coming with you.",
                    len(kids),
                )
                % {"n": len(kids)},
            )
        if not data.get("childcare_fallback"):
            form.add_error(
                "childcare_fallback", _("Please tell us what to do if childcare is full.")
            )
        if not data.get("health_consent"):
            form.add_error(
                "health_consent",
                _("Please agree so that the childcare staff can look after your children safely."),
            )
        bands: dict[int, list[ChildcareBand]] = {}
        for band in ChildcareBand.objects.filter(
            session__in=[o.session_id for o in venues]
        ).select_related("session"):
            bands.setdefault(band.session_id, []).append(band)
        for child_form in self._filled_child_forms():
            born = child_form.cleaned_data["date_of_birth"]
            for option in venues:
                session = option.session
                if born > session.date:
                    child_form.add_error(
                        "date_of_birth",
                        _("Please check the date of birth: it is after the date of the session."),
                    )
                    break
                if band_for(bands.get(session.pk, []), born) is None:
                    ranges = " / ".join(b.label for b in bands.get(session.pk, [])) or "—"
                    child_form.add_error(
                        "date_of_birth",
                        _(
                            "On %(date)s (%(session)s) this child's age is outside childcare "
                            "(%(ranges)s). The child can come with you in the hall instead: please "
                            "remove this child from childcare."
                        )
                        % {
                            "date": formats.date_format(session.date, "SHORT_DATE_FORMAT"),
                            "session": session.name,
                            "ranges": ranges,
                        },
                    )
                    break

    def to_input(self) -> ApplicationInput:
        d = self.form.cleaned_data
        has_venue = any(o.is_venue for o in self.form.chosen_options)
        kids = self.filled_children() if has_venue else []
        return ApplicationInput(
            choices=self.form.chosen_options,
            family_name=d["family_name"],
            given_name=d["given_name"],
            family_name_kana=d["family_name_kana"],
            given_name_kana=d["given_name_kana"],
            email=d["email"],
            phone=d["phone"],
            municipality=d["municipality"],
            grades=sorted(d["grades"]),
            # Online viewing is one link per household: the party matters only at the venue.
            adults=d["adults"] if has_venue else 1,
            children=d["children"] if has_venue else 0,
            childcare_fallback=d.get("childcare_fallback") or "" if kids else "",
            childcare_children=[
                ChildInput(
                    name=k["name"],
                    name_kana=k["name_kana"],
                    date_of_birth=k["date_of_birth"],
                    notes=k.get("notes", ""),
                )
                for k in kids
            ],
            needs_sign_language=d["needs_sign_language"],
            needs_wheelchair_space=d["needs_wheelchair_space"],
            needs_other=d["needs_other"],
            questions=d["questions"],
            booths=list(d["booths"]),
            health_consent=bool(d.get("health_consent")),
        )

    @classmethod
    def initial_from(cls, application: Application) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        initial = {
            "choice_1": application.choice_1_id,
            "choice_2": application.choice_2_id,
            "choice_3": application.choice_3_id,
            "family_name": application.family_name,
            "given_name": application.given_name,
            "family_name_kana": application.family_name_kana,
            "given_name_kana": application.given_name_kana,
            "email": application.email,
            "email_confirm": application.email,
            "phone": application.phone,
            "municipality": application.municipality,
            "grades": application.grade_codes,
            "adults": application.adults,
            "children": application.children,
            "childcare_fallback": application.childcare_fallback,
            "needs_sign_language": application.needs_sign_language,
            "needs_wheelchair_space": application.needs_wheelchair_space,
            "needs_other": application.needs_other,
            "questions": application.questions,
            "booths": [b.pk for b in application.booths_of_interest.all()],
            "privacy_consent": True,
            "health_consent": application.health_consent_at is not None,
        }
        children = [
            {
                "name": c.name,
                "name_kana": c.name_kana,
                "date_of_birth": c.date_of_birth,
                "notes": c.notes,
            }
            for c in application.childcare_children.all()
        ]
        return initial, children


class ResendLinkForm(forms.Form):
    email = LineField(
        label=_("E-mail address you applied with"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("Yes, I withdraw my application."),
        error_messages={"required": _("Please tick the box to confirm.")},
    )
