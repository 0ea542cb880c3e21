from django.contrib.admin.apps import AdminConfig


class SeminarAdminConfig(AdminConfig):
    """``admin.site`` is our SeminarAdminSite, so every app registers on it unchanged."""

    default_site = "seminar_site.admin_site.SeminarAdminSite"
