"""The back office's pages, mounted at /admin/office/ (seminar_site/urls.py). Every view goes
through the admin site's admin_view: staff login, the second factor in production, CSRF and
no caching; each then checks its own rule in office/permissions.py."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.urls import URLPattern, path, re_path

from . import applications, duplicates, lottery_console, reception
from .exports import views as exports

app_name = "office"
FORMAT = r"(?P<fmt>csv|xlsx)"


def staff_page(route: str, view: Callable[..., Any], name: str) -> URLPattern:
    pattern = re_path if route.startswith("^") else path
    return pattern(route, admin.site.admin_view(view), name=name)


urlpatterns = [
    staff_page("applications/<int:pk>/status/", applications.status_view, "application_status"),
    staff_page("duplicates/", duplicates.review_view, "duplicate_review"),
    staff_page(
        "duplicates/<int:application_id>/<int:other_id>/",
        duplicates.decide_view,
        "duplicate_decide",
    ),
    staff_page("reception/<int:session_id>/", reception.checkin_view, "checkin"),
    staff_page(
        "reception/<int:session_id>/arrive/<int:application_id>/",
        reception.arrive_view,
        "arrive",
    ),
    staff_page("reception/<int:session_id>/counts.json", reception.counts_view, "checkin_counts"),
    staff_page("reception/<int:session_id>/list/", reception.reception_list_view, "reception_list"),
    staff_page("lottery/<slug:code>/", lottery_console.console_view, "lottery_console"),
    staff_page("lottery/<slug:code>/freeze/", lottery_console.freeze_view, "lottery_freeze"),
    staff_page(
        "lottery/<slug:code>/randomness/", lottery_console.randomness_view, "lottery_randomness"
    ),
    staff_page("lottery/<slug:code>/dry-run/", lottery_console.dry_run_view, "lottery_dry_run"),
    staff_page("lottery/<slug:code>/draw/", lottery_console.draw_view, "lottery_draw"),
    staff_page("lottery/<slug:code>/audit.json", lottery_console.audit_view, "lottery_audit"),
    staff_page("exports/", exports.index_view, "export_index"),
    staff_page(
        rf"^exports/edition/(?P<edition_code>[-\w]+)/applications\.{FORMAT}$",
        exports.edition_applications_view,
        "export_edition_applications",
    ),
    staff_page(
        rf"^exports/session/(?P<session_id>\d+)/applications\.{FORMAT}$",
        exports.session_applications_view,
        "export_session_applications",
    ),
    staff_page(
        rf"^exports/session/(?P<session_id>\d+)/childcare\.{FORMAT}$",
        exports.childcare_view,
        "export_childcare",
    ),
    staff_page(
        rf"^exports/session/(?P<session_id>\d+)/reception\.{FORMAT}$",
        exports.reception_view,
        "export_reception",
    ),
    staff_page(
        rf"^exports/session/(?P<session_id>\d+)/booths\.{FORMAT}$",
        exports.booths_view,
        "export_booths",
    ),
]
