"""Create the demo: two tenants that both use 192.168.1.0/24, one instance each, and an admin user. Acme's
network is dual stack: it also has a DHCPv6-stateful subnet, so its instance holds both families.

Idempotent: run by every `make run`. Passwords are never fixed defaults: taken from the environment
(NETDASH_ADMIN_PASSWORD, NETDASH_DEMO_PASSWORD) or generated on first run and printed once.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants import services
from tenants.choices import Role
from tenants.models import Network, Tenant

DEMO_V6 = {"acme-net": "2001:db8:ac::/64"}  # documentation prefix (RFC 3849), isolated network: no route out

DEMO = [
    # tenant name, slug, user, network, hostname, domain
    ("Acme Corp", "acme", "alice", "acme-net", "acme-vm1", "acme.internal"),
    ("Globex", "globex", "bob", "globex-net", "globex-vm1", "globex.internal"),
]


class Command(BaseCommand):
    help = "Create the two demo tenants with overlapping 192.168.1.0/24 networks and an admin user."

    def _user(self, username: str, *, superuser: bool, env: str) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return
        password = os.environ.get(env) or secrets.token_urlsafe(12)
        if superuser:
            User.objects.create_superuser(username=username, email="", password=password)
        else:
            User.objects.create_user(username=username, password=password)
        shown = "(from $" + env + ")" if os.environ.get(env) else password
        self.stdout.write(self.style.WARNING(f"created user {username!r} with password {shown} — shown once; "
                                             f"change it with: manage.py changepassword {username}"))

    def handle(self, *args, **options) -> None:
        self._user("admin", superuser=True, env="NETDASH_ADMIN_PASSWORD")
        User = get_user_model()
        for name, slug, username, network_name, hostname, domain in DEMO:
            self._user(username, superuser=False, env="NETDASH_DEMO_PASSWORD")
            with transaction.atomic():
                tenant = Tenant.objects.filter(slug=slug).first() or services.tenant_create(name=name, slug=slug)
                services.membership_set(tenant=tenant, user=User.objects.get(username=username), role=Role.ADMIN)
                network = Network.objects.filter(tenant=tenant, name=network_name).first()
                if network is None:
                    network = services.network_create(
                        tenant=tenant, name=network_name,
                        subnet={"cidr": "192.168.1.0/24", "domain_name": domain},
                    )
                _dual_stack(network)
                if not network.instances.filter(hostname=hostname).exists():
                    services.instance_create(network=network, hostname=hostname)
            self.stdout.write(f"demo tenant {name!r}: user {username!r}, network {network_name!r} 192.168.1.0/24, "
                              f"instance {hostname!r}")


def _dual_stack(network: Network) -> None:
    """Give a demo network its IPv6 subnet (before its instance is created, so the instance gets both families)."""
    cidr = DEMO_V6.get(network.name)
    if cidr is not None and not network.subnets.filter(ip_version=6).exists():
        services.subnet_create(network=network, cidr=cidr, ipv6_ra_mode="dhcpv6-stateful",
                               ipv6_address_mode="dhcpv6-stateful")
