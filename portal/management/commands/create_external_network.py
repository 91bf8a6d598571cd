"""``manage.py create_external_network <tenant-slug> <name> <cidr> [--simulated-upstream]``: an administrator's
external network (TEST-NET only), through ``tenants.routers.external_network_create``."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import routers
from tenants.models import Tenant

from .create_tenant import errors_text


class Command(BaseCommand):
    help = "Create an external network every tenant may use for router gateways and floating IPs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="Slug of the (operators') tenant that owns it.")
        parser.add_argument("name")
        parser.add_argument("cidr", help="Inside 198.51.100.0/24 or 203.0.113.0/24, e.g. 203.0.113.0/24.")
        parser.add_argument("--simulated-upstream", action="store_true",
                            help="Attach the project's upstream namespace (echo service at the gateway).")

    def handle(self, *args, tenant: str, name: str, cidr: str, simulated_upstream: bool, **options) -> None:
        owner = Tenant.objects.filter(slug=tenant).first()
        if owner is None:
            raise CommandError(f"No tenant {tenant!r}; create it first (manage.py create_tenant {tenant}).")
        try:
            network = routers.external_network_create(
                tenant=owner, name=name, simulated_upstream=simulated_upstream,
                subnet={"cidr": cidr, "gateway": "auto", "enable_dhcp": False})
        except ValidationError as exc:
            raise CommandError(errors_text(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"created external network {network.name} ({cidr}), id {network.pk}"))
