"""Server-rendered pages: the tenant's self-service dashboard."""

from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Pages for networks, subnets, instances, members, audit and API tokens."""

    name = "portal"
    verbose_name = "Portal"
