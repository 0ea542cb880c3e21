"""The review queue of likely duplicates (SPEC §3): each open pair side by side, keep both or
remove one (services.duplicate_keep_both, duplicate_remove_one).

A flag is open while it is unresolved and both of its applications are active
(DuplicateFlag.objects.open). Flags come in mirrored pairs (A→B and B→A, one per reason), so
the queue shows each pair of applications once, with every reason that flagged it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from registration import services
from registration.models import Application, DuplicateFlag, Edition
from seminar_site.admin_site import staff_member

from . import permissions


@dataclass
class DuplicatePair:
    """Two active applications that look like one household; ``first`` was submitted first."""

    first: Application
    second: Application
    reasons: list[str] = field(default_factory=list)
    flagged_at: dt.datetime | None = None

    @property
    def applications(self) -> tuple[Application, Application]:
        return self.first, self.second

    def reason_labels(self) -> list[str]:
        return [str(DuplicateFlag.Reason(r).label) for r in self.reasons]


def open_pairs(edition: Edition | None = None) -> list[DuplicatePair]:
    """The review queue, oldest flag first, in a fixed number of queries."""
    related = [
        f"{side}__{choice}__session"
        for side in ("application", "other")
        for choice in ("choice_1", "choice_2", "choice_3")
    ]
    flags = (
        DuplicateFlag.objects.open(edition)
        .select_related("application__edition", "other__edition", *related)
        .prefetch_related("application__childcare_children", "other__childcare_children")
        .order_by("created_at", "id")
    )
    pairs: dict[tuple[int, int], DuplicatePair] = {}
    for flag in flags:
        a, b = sorted((flag.application, flag.other), key=lambda x: (x.created_at, x.pk))
        pair = pairs.setdefault((a.pk, b.pk), DuplicatePair(first=a, second=b))
        if flag.reason not in pair.reasons:
            pair.reasons.append(flag.reason)
        if pair.flagged_at is None or flag.created_at < pair.flagged_at:
            pair.flagged_at = flag.created_at
    return list(pairs.values())


def _children_text(application: Application) -> str:
    # Names and birth dates only: the children's health notes are not for this page.
    return "; ".join(
        f"{c.name} ({c.name_kana}) {c.date_of_birth.isoformat()}"
        for c in application.childcare_children.all()
    )


def comparison_rows(pair: DuplicatePair) -> list[tuple[str, str, str, bool]]:
    """(label, first, second, same) for the two applications side by side."""
    rows: list[tuple[Any, Callable[[Application], str]]] = [
        (gettext_lazy("name"), lambda a: a.full_name),
        (gettext_lazy("furigana"), lambda a: a.full_name_kana),
        (gettext_lazy("email"), lambda a: a.email),
        (gettext_lazy("phone"), lambda a: a.phone),
        (gettext_lazy("municipality"), lambda a: a.municipality_label),
        (gettext_lazy("children in childcare"), _children_text),
        (gettext_lazy("children's grades"), lambda a: ", ".join(a.grade_labels)),
        (gettext_lazy("choices"), lambda a: ", ".join(o.code for o in a.choices)),
        (gettext_lazy("people"), lambda a: f"{a.adults} + {a.children}"),
        (
            gettext_lazy("submitted"),
            lambda a: f"{timezone.localtime(a.created_at):%Y-%m-%d %H:%M}",
        ),
        (gettext_lazy("language"), lambda a: a.get_language_display()),
    ]
    out = []
    for label, value in rows:
        first, second = value(pair.first), value(pair.second)
        out.append((str(label), first, second, bool(first) and first == second))
    return out


class ReviewForm(forms.Form):
    """One decision on a pair of likely duplicates; a reason is required to remove one."""

    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in the history)"),
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        required=False,
    )

    def __init__(self, *args: Any, pair: DuplicatePair, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pair = pair
        self.fields["action"] = forms.ChoiceField(
            choices=[("keep", gettext_lazy("Keep both: not duplicates")), *self.removals()]
        )

    def removals(self) -> list[tuple[str, str]]:
        return [
            (f"{status}:{application.pk}", f"{application.number}: {status.label}")
            for application in self.pair.applications
            for status in (Application.Status.DUPLICATE, Application.Status.INVALID)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action", "keep") != "keep" and not data.get("reason", "").strip():
            self.add_error("reason", _("Give the reason for marking an application."))
        return data


def review_view(request: HttpRequest) -> HttpResponse:
    """The open pairs side by side, each with its decisions."""
    permissions.require(permissions.may_review_duplicates(request.user))
    edition = None
    if request.GET.get("edition"):
        edition = get_object_or_404(Edition, code=request.GET["edition"])
    page = Paginator(open_pairs(edition), 20).get_page(request.GET.get("page"))
    context = {
        **admin.site.each_context(request),
        "title": _("Likely duplicates to review"),
        "opts": DuplicateFlag._meta,
        "page": page,
        "pairs": [
            (
                pair,
                comparison_rows(pair),
                ReviewForm(pair=pair, auto_id=f"pair-{pair.first.pk}-{pair.second.pk}-%s"),
            )
            for pair in page
        ],
        "editions": Edition.objects.all(),
        "edition": edition,
        "may_decide": permissions.may_decide_duplicates(request.user, "keep"),
        "may_remove": permissions.may_decide_duplicates(request.user, "remove"),
    }
    return TemplateResponse(request, "admin/office/duplicate_review.html", context)


@require_POST
def decide_view(request: HttpRequest, application_id: int, other_id: int) -> HttpResponse:
    """Keep both, or mark one of the pair duplicate or invalid (with a reason)."""
    permissions.require(
        permissions.may_decide_duplicates(request.user, request.POST.get("action", ""))
    )
    queue_url = reverse("office:duplicate_review")
    if request.POST.get("edition"):
        queue_url += "?" + urlencode({"edition": request.POST["edition"]})
    queue = HttpResponseRedirect(queue_url)
    a = get_object_or_404(Application, pk=application_id)
    b = get_object_or_404(Application, pk=other_id)
    first, second = sorted((a, b), key=lambda x: (x.created_at, x.pk))
    form = ReviewForm(request.POST, pair=DuplicatePair(first=first, second=second))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"{a.number} / {b.number}: {error}")
        return queue
    actor = staff_member(request)
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
    try:
        if action == "keep":
            services.duplicate_keep_both(application=a, other=b, actor=actor, reason=reason)
            messages.success(
                request, _("%(a)s and %(b)s: kept both.") % {"a": a.number, "b": b.number}
            )
        else:
            status, pk = action.split(":")
            remove, keep = (a, b) if int(pk) == a.pk else (b, a)
            services.duplicate_remove_one(
                remove=remove, keep=keep, status=status, actor=actor, reason=reason
            )
            messages.success(
                request,
                _("%(number)s: %(status)s. %(kept)s stays active.")
                % {
                    "number": remove.number,
                    "status": Application.Status(status).label,
                    "kept": keep.number,
                },
            )
    except services.AlreadyReviewed:
        messages.warning(
            request, _("This pair was already reviewed, or one of them is no longer active.")
        )
    return queue
