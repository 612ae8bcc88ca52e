from django.apps import AppConfig


class OpsAppConfig(AppConfig):
    name = "fixtures_ops.opsapp"
    label = "opsapp"
    default_auto_field = "django.db.models.BigAutoField"
