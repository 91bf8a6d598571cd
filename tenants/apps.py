from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """The domain: tenants, their networks, subnets, instances and leases."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"
