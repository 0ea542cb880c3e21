"""The lottery's records in the admin, read only: runs (with a link to the console in office/)
and results."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from seminar_site.admin_site import ReadOnlyAdminMixin

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
        return format_html(
            '<a href="{}">{}</a>',
            reverse("office:lottery_console", args=[obj.edition.code]),
            _("Open the lottery console"),
        )
