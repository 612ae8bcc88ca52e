from django.apps import AppConfig


class DjangoMigratorConfig(AppConfig):
    """Adds `manage.py migrate_all` and `manage.py migrator`; the app has no models."""

    name = "django_migrator"
    verbose_name = "django-migrator"

    def ready(self):
        from django.core import checks

        # Imported here so that the exporter, which runs inside the project, finds the
        # registry in sys.modules even when no app registered a detector.
        from . import detectors  # noqa: F401
        from .checks import check_fake_detectors

        checks.register(check_fake_detectors)
