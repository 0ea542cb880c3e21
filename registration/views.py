"""The parents' pages: home, application (入力 → 確認 → 完了), My application."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from childcare.models import ChildcareBand
from seminar_site.i18n import active_language
from seminar_site.ratelimit import Limit, email_key, limit_posts
from seminar_site.security import answer_no_sooner_than

from . import page_cache, services, tickets
from .forms import ApplicationFormGroup, ResendLinkForm, WithdrawForm
from .models import Application, Booth, Edition, Option, Session
from .results import result_context
from .retention import DONE_KEY, DRAFT_KEY
from .tokens import LinkExpired, LinkInvalid, make_ticket, read_token

# Both steps of the application count against one limit per client address; "e-mail me my link"
# also against one per e-mail address, so that nobody can flood a parent's mailbox.
apply_limit = limit_posts("apply", Limit("ip", "RATELIMIT_APPLY"))
resend_link_limit = limit_posts(
    "resend-link",
    Limit("ip", "RATELIMIT_RESEND_LINK"),
    Limit(email_key, "RATELIMIT_RESEND_LINK_PER_ADDRESS"),
)

# Every page that shows a parent's answers, address or application is @never_cache
# (Cache-Control: no-store, private): no browser, shared computer's back button or proxy keeps it.


def _sessions(edition: Edition) -> list[Session]:
    return list(
        edition.sessions.prefetch_related(
            Prefetch("options", queryset=Option.objects.order_by("-kind")),
            Prefetch("childcare_bands", queryset=ChildcareBand.objects.order_by("min_age_months")),
        )
    )


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The current edition's page, from the cache (registration.page_cache)."""

    def build(now: dt.datetime) -> tuple[HttpResponse, dt.datetime | None]:
        edition = Edition.objects.current()
        if edition is None:
            return render(request, "registration/no_edition.html"), None
        # Which edition is current changes whenever any published edition opens or closes.
        published = Edition.objects.filter(is_published=True).only(
            "registration_opens_at", "registration_closes_at"
        )
        return _edition_page(request, edition), page_cache.next_change(published, now)

    return page_cache.serve(request, "home", build)


@require_GET
def edition_home(request: HttpRequest, code: str) -> HttpResponse:
    """One edition's page, from the cache (registration.page_cache)."""

    def build(now: dt.datetime) -> tuple[HttpResponse, dt.datetime | None]:
        edition = get_object_or_404(Edition, code=code, is_published=True)
        return _edition_page(request, edition), page_cache.next_change([edition], now)

    return page_cache.serve(request, f"edition:{code}", build)


def _edition_page(request: HttpRequest, edition: Edition) -> HttpResponse:
    # Everyone sees the same page: registration.page_cache stores it whole, so nothing here may
    # depend on the visitor (no form, no CSRF token, no session).
    return render(
        request,
        "registration/home.html",
        {
            "edition": edition,
            "sessions": _sessions(edition),
            "state": edition.registration_state(),
        },
    )


@require_GET
def booths(request: HttpRequest, code: str, session: str) -> HttpResponse:
    session_obj = get_object_or_404(
        Session, edition__code=code, edition__is_published=True, code=session
    )
    booth_list = Booth.objects.filter(session=session_obj).select_related("organisation")
    return render(
        request,
        "registration/booths.html",
        {"edition": session_obj.edition, "session": session_obj, "booths": booth_list},
    )


def _edition_open_or_page(request: HttpRequest, code: str) -> tuple[Edition, HttpResponse | None]:
    edition = get_object_or_404(Edition, code=code, is_published=True)
    if not edition.registration_is_open():
        return edition, render(request, "registration/closed.html", {"edition": edition})
    return edition, None


def _store_draft(request: HttpRequest, code: str, data: QueryDict) -> None:
    request.session[DRAFT_KEY.format(code=code)] = {
        k: data.getlist(k) for k in data if k != "csrfmiddlewaretoken"
    }


def _load_draft(request: HttpRequest, code: str) -> QueryDict | None:
    stored = request.session.get(DRAFT_KEY.format(code=code))
    if stored is None:
        return None
    draft = QueryDict(mutable=True)
    for key, values in stored.items():
        draft.setlist(key, values)
    return draft


@never_cache
@require_http_methods(["GET", "POST"])
@apply_limit
def apply_input(request: HttpRequest, code: str) -> HttpResponse:
    """入力: the form. A valid form is kept in the session and shown back on 確認."""
    edition, closed = _edition_open_or_page(request, code)
    if closed:
        return closed
    if request.method == "POST":
        group = ApplicationFormGroup(request.POST, edition=edition)
        if group.is_valid():
            _store_draft(request, code, request.POST)
            return redirect("registration:apply_confirm", code=code)
    else:
        # Coming back from 確認 to correct something: the answers are still there.
        draft = _load_draft(request, code)
        group = ApplicationFormGroup(draft, edition=edition)
        if draft is not None:
            group.is_valid()
    return render(
        request,
        "registration/apply_input.html",
        {
            "edition": edition,
            "form": group.form,
            "children": group.children,
            "sessions": _sessions(edition),
            "step": 1,
            "cacheable": request.method == "GET" and not group.form.is_bound,
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
@apply_limit
def apply_confirm(request: HttpRequest, code: str) -> HttpResponse:
    """確認: the answers to check, then 送信 submits them."""
    edition, closed = _edition_open_or_page(request, code)
    if closed:
        return closed
    draft = _load_draft(request, code)
    if draft is None:
        return redirect("registration:apply_input", code=code)
    group = ApplicationFormGroup(draft, edition=edition)
    if not group.is_valid():
        return redirect("registration:apply_input", code=code)
    data = group.to_input()
    if request.method == "POST":
        # A first application does more work than a second one for the same address; the answer
        # must not tell a stranger which one this was by its timing.
        try:
            with answer_no_sooner_than(settings.APPLY_SUBMIT_ANSWER_SECONDS):
                services.application_submit(edition=edition, data=data, language=active_language())
        except services.RegistrationClosed:
            return render(request, "registration/closed.html", {"edition": edition})
        del request.session[DRAFT_KEY.format(code=code)]
        request.session[DONE_KEY.format(code=code)] = data.email
        return redirect("registration:apply_done", code=code)
    return render(
        request, "registration/apply_confirm.html", {"edition": edition, "data": data, "step": 2}
    )


@never_cache
@require_GET
def apply_done(request: HttpRequest, code: str) -> HttpResponse:
    """完了: the same words whether or not this address had applied before."""
    edition = get_object_or_404(Edition, code=code, is_published=True)
    return render(
        request,
        "registration/apply_done.html",
        {"edition": edition, "email": request.session.get(DONE_KEY.format(code=code)), "step": 3},
    )


def _application_from_token(
    request: HttpRequest, token: str
) -> tuple[Application | None, HttpResponse | None]:
    try:
        number = read_token(token)
    except LinkExpired:
        return None, render(
            request,
            "registration/link_problem.html",
            {"expired": True, "form": ResendLinkForm()},
            status=410,
        )
    except LinkInvalid:
        return None, render(
            request,
            "registration/link_problem.html",
            {"expired": False, "form": ResendLinkForm()},
            status=404,
        )
    application = get_object_or_404(
        Application.objects.select_related(
            "edition", "choice_1__session", "choice_2__session", "choice_3__session"
        ),
        number=number,
    )
    return application, None


@never_cache
@require_GET
def my_application(request: HttpRequest, token: str) -> HttpResponse:
    application, problem = _application_from_token(request, token)
    if problem or application is None:
        return problem or redirect("registration:home")
    result = result_context(application)
    return render(
        request,
        "registration/my_application.html",
        {
            "application": application,
            "token": token,
            "children": application.childcare_children.all(),
            "booths": application.booths_of_interest.select_related("session", "organisation"),
            "can_change": application.can_change(),
            **result,
            **tickets.admission_context(application, result["place"]),
        },
    )


@never_cache
@require_GET
def my_ticket(request: HttpRequest, token: str) -> HttpResponse:
    """The admission ticket to print or show on a phone: QR code and application number."""
    application, problem = _application_from_token(request, token)
    if problem or application is None:
        return problem or redirect("registration:home")
    place = tickets.current_place(application)
    if place is None or not place.option.is_venue:
        messages.info(
            request,
            _(
                "There is no admission ticket for this application: tickets are for "
                "places at the venue."
            ),
        )
        return redirect("registration:my_application", token=token)
    return render(
        request,
        "registration/ticket.html",
        {
            "application": application,
            "token": token,
            "place": place,
            "session": place.option.session,
            "ticket_svg": tickets.ticket_svg(make_ticket(application.number)),
        },
    )


@never_cache
@require_GET
def my_calendar(request: HttpRequest, token: str) -> HttpResponse:
    """The session held, as an .ics file for the phone's calendar."""
    application, problem = _application_from_token(request, token)
    if problem or application is None:
        return problem or redirect("registration:home")
    place = tickets.current_place(application)
    if place is None:
        messages.info(request, _("There is no calendar entry: this application holds no place."))
        return redirect("registration:my_application", token=token)
    response = HttpResponse(
        tickets.calendar_ics(application=application, place=place),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="seminar.ics"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def my_application_edit(request: HttpRequest, token: str) -> HttpResponse:
    application, problem = _application_from_token(request, token)
    if problem or application is None:
        return problem or redirect("registration:home")
    if not application.can_change():
        messages.info(
            request,
            _(
                "Registration has closed, so the application can no longer be "
                "changed. Please call the office if something is wrong."
            ),
        )
        return redirect("registration:my_application", token=token)
    edition = application.edition
    if request.method == "POST":
        post = request.POST.copy()
        # The e-mail address identifies the application and is not changed here.
        post["email"] = post["email_confirm"] = application.email
        group = ApplicationFormGroup(post, edition=edition)
        if group.is_valid():
            try:
                services.application_change(application=application, data=group.to_input())
            except services.NotChangeable:
                messages.error(request, _("This application can no longer be changed."))
            else:
                messages.success(
                    request,
                    _(
                        "Your application has been changed. We have sent "
                        "you an e-mail with the new details."
                    ),
                )
            return redirect("registration:my_application", token=token)
    else:
        initial, children = ApplicationFormGroup.initial_from(application)
        group = ApplicationFormGroup(edition=edition, initial=initial, children_initial=children)
    group.form.fields["email"].disabled = True
    group.form.fields["email_confirm"].disabled = True
    return render(
        request,
        "registration/apply_input.html",
        {
            "edition": edition,
            "form": group.form,
            "children": group.children,
            "sessions": _sessions(edition),
            "editing": application,
            "token": token,
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def my_application_withdraw(request: HttpRequest, token: str) -> HttpResponse:
    application, problem = _application_from_token(request, token)
    if problem or application is None:
        return problem or redirect("registration:home")
    if not application.can_withdraw():
        if application.status == Application.Status.ACTIVE:
            messages.info(request, _("The session has started: withdrawal is no longer possible."))
        return redirect("registration:my_application", token=token)
    form = WithdrawForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.application_withdraw(application=application)
        except services.NotChangeable:
            messages.info(request, _("The session has started: withdrawal is no longer possible."))
        else:
            messages.success(
                request,
                _("Your application has been withdrawn. We have sent you an e-mail to confirm."),
            )
        return redirect("registration:my_application", token=token)
    return render(
        request,
        "registration/withdraw.html",
        {"application": application, "form": form, "token": token},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@resend_link_limit
def resend_link(request: HttpRequest) -> HttpResponse:
    """E-mail me my link again. The answer never says whether the address applied."""
    form = ResendLinkForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        services.application_resend_link(
            email=form.cleaned_data["email"], language=active_language()
        )
        return render(
            request, "registration/resend_link_sent.html", {"email": form.cleaned_data["email"]}
        )
    return render(request, "registration/resend_link.html", {"form": form})


@require_GET
def page(request: HttpRequest, template: str, **context: Any) -> HttpResponse:
    return render(request, template, {"edition": Edition.objects.current(), **context})
