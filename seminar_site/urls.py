from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness probe and the benchmarks' trivial view."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # The back office's own pages (office/urls.py), before the admin's catch-all.
    path("admin/office/", include("office.urls")),
    path("admin/", admin.site.urls),
]
# Japanese at /, English at /en/: a plain link switches language, no JavaScript needed.
urlpatterns += i18n_patterns(
    path("", include("lottery.urls")),
    path("", include("registration.urls")),
    prefix_default_language=False,
)

# Error pages in the visitor's language, with the office's phone number (seminar_site/errors.py).
handler400 = "seminar_site.errors.bad_request"
handler500 = "seminar_site.errors.server_error"
