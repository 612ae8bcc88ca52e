"""System check: the dotted paths in DJANGO_MIGRATOR_FAKE_DETECTORS must import."""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def check_fake_detectors(app_configs=None, **kwargs):
    from .detectors import SETTING, settings_detectors

    try:
        settings_detectors()
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint=f"Each entry of {SETTING} must be the dotted path of a callable "
                "fn(operation) -> bool.",
                id="django_migrator.E001",
            )
        ]
    return []
