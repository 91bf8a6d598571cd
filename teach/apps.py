from django.apps import AppConfig


class TeachConfig(AppConfig):
    """Teaching tools: namespace inspector, equivalent commands, the overlapping-IPs lab, diagnostics, shell."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "teach"
    verbose_name = "Teaching"
