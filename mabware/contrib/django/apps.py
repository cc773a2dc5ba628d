"""The app config: ``"mabware.contrib.django"`` in INSTALLED_APPS registers the checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class MabwareConfig(AppConfig):  # type: ignore[misc]  # django ships no type hints
    """Registers mabware's system checks (``manage.py check --tag mabware``)."""

    name = "mabware.contrib.django"
    label = "mabware"
    verbose_name = "mabware"

    def ready(self) -> None:
        from mabware.contrib.django.checks import check_settings

        checks.register(check_settings, "mabware")
