"""The lottery console: the edition's state, then one form per step, each posting to its own
view that calls one service (lottery.services), sets one message and comes back here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from lottery import services
from lottery.fairness import fairness_report
from lottery.models import LotteryResult, LotteryRun
from registration.models import Edition
from seminar_site.admin_site import staff_member

from . import permissions


def _dry_run_key(edition: Edition) -> str:
    return f"lottery-dry-run-{edition.pk}"


def console_view(request: HttpRequest, code: str) -> HttpResponse:
    permissions.require(permissions.may_see_lottery(request.user))
    edition = get_object_or_404(Edition, code=code)
    run = LotteryRun.objects.filter(edition=edition).first()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Lottery console: %(edition)s") % {"edition": edition.code},
        "edition": edition,
        "run": run,
        "may_run": permissions.may_run_lottery(request.user),
        "registration_state": edition.registration_state(),
        "unresolved_duplicates": services.unresolved_duplicates(edition),
        "dry_run": request.session.pop(_dry_run_key(edition), None),
    }
    if run is not None and run.state == LotteryRun.State.DRAWN:
        results = (
            LotteryResult.objects.filter(run=run).select_related("option__session").order_by("rank")
        )
        context["page"] = Paginator(results, 100).get_page(request.GET.get("page"))
        context["fairness"] = fairness_report(run)
    return TemplateResponse(request, "admin/office/lottery_console.html", context)


def _step(request: HttpRequest, code: str) -> Edition:
    """A step of the lottery: for staff who may run it, on an existing edition."""
    permissions.require(permissions.may_run_lottery(request.user))
    return get_object_or_404(Edition, code=code)


def _back(edition: Edition) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("office:lottery_console", args=[edition.code]))


@require_POST
def freeze_view(request: HttpRequest, code: str) -> HttpResponse:
    edition = _step(request, code)
    try:
        run = services.lottery_freeze(
            edition=edition,
            actor=staff_member(request),
            confirm_duplicates=request.POST.get("confirm_duplicates") == "on",
        )
    except services.LotteryRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request,
            _("The roll is frozen. Roll hash %(hash)s, commitment %(commitment)s.")
            % {"hash": run.roll_hash, "commitment": run.commitment},
        )
    return _back(edition)


@require_POST
def randomness_view(request: HttpRequest, code: str) -> HttpResponse:
    edition = _step(request, code)
    run = get_object_or_404(LotteryRun, edition=edition)
    try:
        services.lottery_set_randomness(
            run=run,
            randomness=request.POST.get("public_randomness", "")[:500],
            actor=staff_member(request),
        )
    except services.LotteryRefused as e:
        messages.error(request, str(e))
    else:
        messages.success(request, _("The public randomness has been saved."))
    return _back(edition)


@require_POST
def dry_run_view(request: HttpRequest, code: str) -> HttpResponse:
    edition = _step(request, code)
    try:
        outcome = services.lottery_draw(edition=edition, actor=staff_member(request), dry_run=True)
    except services.LotteryRefused as e:
        messages.error(request, str(e))
    else:
        request.session[_dry_run_key(edition)] = outcome.counts
        messages.success(request, outcome.message)
    return _back(edition)


@require_POST
def draw_view(request: HttpRequest, code: str) -> HttpResponse:
    edition = _step(request, code)
    try:
        outcome = services.lottery_draw(edition=edition, actor=staff_member(request))
    except services.LotteryRefused as e:
        messages.error(request, str(e))
    else:
        (messages.success if outcome.drawn else messages.warning)(request, outcome.message)
    return _back(edition)


def audit_view(request: HttpRequest, code: str) -> HttpResponse:
    """The audit file (LOTTERY.md §6), also for an edition not published."""
    permissions.require(permissions.may_see_lottery(request.user))
    edition = get_object_or_404(Edition, code=code)
    try:
        text = services.lottery_audit_json(edition=edition)
    except (LotteryRun.DoesNotExist, services.LotteryRefused):
        messages.error(request, _("The audit file exists once the lottery has been drawn."))
        return _back(edition)
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lottery-{edition.code}-audit.json"'
    return response
