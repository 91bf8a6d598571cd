from django.apps import AppConfig


class LiveConfig(AppConfig):
    """The live view: a websocket that relays tenant events, and the topology and lease diagrams it feeds."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "live"
