"""The site's URLs with the exports wired into the admin as registration/admin.py will do it
(``*exports.export_urls(self.admin_site)`` in ApplicationAdmin.get_urls), so that the tests
reverse the same ``admin:registration_export_*`` names at the same paths."""

from django.contrib import admin
from django.urls import URLResolver, include, path

from registration import exports
from seminar_site.urls import urlpatterns as site_urlpatterns

admin_urls, app_name, namespace = admin.site.urls
urlpatterns = [
    path(
        "admin/",
        include(
            (
                [
                    path("registration/application/", include(exports.export_urls(admin.site))),
                    *admin_urls,
                ],
                app_name,
            ),
            namespace=namespace,
        ),
    ),
    *(p for p in site_urlpatterns if not (isinstance(p, URLResolver) and p.app_name == "admin")),
]
