from django.apps import AppConfig


class OfficeConfig(AppConfig):
    """The staff back office beyond plain ModelAdmin lists. No models: it works on the domain
    apps' models through their services."""

    name = "office"
    verbose_name = "Office"
