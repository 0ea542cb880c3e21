"""The lottery console for the seminar office, and read-only views of runs and results."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from registration.admin import ReadOnlyAdminMixin
from registration.models import Edition

from . import services
from .fairness import fairness_report
from .models import LotteryResult, LotteryRun


@admin.register(LotteryResult)
class LotteryResultAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["rank", "number", "outcome", "option", "round", "childcare", "waitlist"]
    list_filter = ["run__edition", "outcome", "option", "childcare", "round"]
    list_select_related = ["option__session"]
    search_fields = ["number"]
    show_full_result_count = False


@admin.register(LotteryRun)
class LotteryRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["edition", "state", "entry_count", "frozen_at", "drawn_at", "console"]
    list_select_related = ["edition"]
    exclude = ["secret", "roll_json"]

    @admin.display(description=_("console"))
    def console(self, obj: LotteryRun) -> str:
        from django.utils.html import format_html

        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:lottery_console", args=[obj.edition.code]),
            _("Open the lottery console"),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "console/<slug:code>/",
                self.admin_site.admin_view(self.console_view),
                name="lottery_console",
            ),
            path(
                "console/<slug:code>/audit.json",
                self.admin_site.admin_view(self.audit_view),
                name="lottery_audit",
            ),
            *super().get_urls(),
        ]

    def _may_run(self, request: HttpRequest) -> bool:
        return request.user.has_perm("lottery.change_lotteryrun")

    def _may_see(self, request: HttpRequest) -> bool:
        return self._may_run(request) or request.user.has_perm("lottery.view_lotteryrun")

    @staticmethod
    def _actor(request: HttpRequest) -> str:
        return request.user.get_username()

    def console_view(self, request: HttpRequest, code: str) -> HttpResponse:
        edition = get_object_or_404(Edition, code=code)
        if not self._may_see(request):
            return HttpResponse(status=403)
        if request.method == "POST":
            return self._console_action(request, edition)
        run = LotteryRun.objects.filter(edition=edition).first()
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": _("Lottery console: %(edition)s") % {"edition": edition.code},
            "edition": edition,
            "run": run,
            "may_run": self._may_run(request),
            "registration_state": edition.registration_state(),
            "unresolved_duplicates": services.unresolved_duplicates(edition),
            "dry_run": request.session.pop(f"lottery-dry-run-{edition.pk}", None),
        }
        if run is not None and run.state == LotteryRun.State.DRAWN:
            results = (
                LotteryResult.objects.filter(run=run)
                .select_related("option__session")
                .order_by("rank")
            )
            context["page"] = Paginator(results, 100).get_page(request.GET.get("page"))
            context["fairness"] = fairness_report(run)
        return TemplateResponse(request, "admin/lottery/console.html", context)

    @staticmethod
    def _redirect(edition: Edition) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:lottery_console", args=[edition.code]))

    def _console_action(self, request: HttpRequest, edition: Edition) -> HttpResponse:
        if not self._may_run(request):
            return HttpResponse(status=403)
        action = request.POST.get("action")
        actor = self._actor(request)
        try:
            if action == "freeze":
                run = services.lottery_freeze(
                    edition=edition,
                    actor_label=actor,
                    confirm_duplicates=request.POST.get("confirm_duplicates") == "on",
                )
                messages.success(
                    request,
                    _("The roll is frozen. Roll hash %(hash)s, commitment %(commitment)s.")
                    % {"hash": run.roll_hash, "commitment": run.commitment},
                )
            elif action == "randomness":
                run = get_object_or_404(LotteryRun, edition=edition)
                services.lottery_set_randomness(
                    run=run,
                    randomness=request.POST.get("public_randomness", "")[:500],
                    actor_label=actor,
                )
                messages.success(request, _("The public randomness has been saved."))
            elif action in ("dry_run", "draw"):
                outcome = services.lottery_draw(
                    edition=edition, actor_label=actor, dry_run=action == "dry_run"
                )
                if action == "dry_run":
                    request.session[f"lottery-dry-run-{edition.pk}"] = outcome.counts
                (messages.success if outcome.drawn or action == "dry_run" else messages.warning)(
                    request, outcome.message
                )
            else:
                messages.error(request, _("Unknown action."))
        except services.LotteryRefused as e:
            messages.error(request, str(e))
        return self._redirect(edition)

    def audit_view(self, request: HttpRequest, code: str) -> HttpResponse:
        if not self._may_see(request):
            return HttpResponse(status=403)
        edition = get_object_or_404(Edition, code=code)
        try:
            audit = services.lottery_audit(edition=edition)
        except (LotteryRun.DoesNotExist, services.LotteryRefused):
            messages.error(request, _("The audit file exists once the lottery has been drawn."))
            return self._redirect(edition)
        response = HttpResponse(
            json.dumps(audit, ensure_ascii=False, indent=1),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="lottery-{edition.code}-audit.json"'
        )
        return response
