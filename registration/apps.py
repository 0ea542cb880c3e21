from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationConfig(AppConfig):
    name = "registration"
    verbose_name = _("Registration")

    def ready(self) -> None:
        # The public page cache drops its pages when staff change an edition: in every process
        # (web, workers, shell), not only in those that imported the views.
        from . import page_cache  # noqa: F401
