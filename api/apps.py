"""REST API (v1) with Bearer tokens and an OpenAPI document."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    """/api/v1/: tenants, networks, subnets, instances and leases over DRF."""

    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        # Registers the OpenAPI description of Bearer auth with drf-spectacular.
        from . import schema  # noqa: F401
