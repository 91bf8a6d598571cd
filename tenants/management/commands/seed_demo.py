"""Create the demo: two tenants that both use 192.168.1.0/24, one instance each, and an admin user. Acme's
network is dual stack: it also has a DHCPv6-stateful subnet, so its instance holds both families.

Each tenant's network sits behind its own router to one external network on TEST-NET-3 with the simulated
upstream (no route out of the project's namespaces), and each instance has a floating IP: the routed overlap —
the same 192.168.1.3 twice, seen outside as two different addresses.

With several live nodes (``NODES=3 make run``) Acme also gets ``acme-spread``, a network whose two instances are
scheduled apart from its two DHCP servers (with run.sh's roles: servers on node1 and node2, instances on node3),
so their leases cross the VXLAN overlay and the topology shows the tunnels.

Idempotent: run by every `make run`. Passwords are never fixed defaults: taken from the environment
(NETDASH_ADMIN_PASSWORD, NETDASH_DEMO_PASSWORD) or generated on first run and printed once.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from tenants import routers, services
from tenants.choices import Role
from tenants.models import FloatingIP, Network, Router, Tenant
from tenants.nodes import live_nodes

DEMO_V6 = {"acme-net": "2001:db8:ac::/64"}  # documentation prefix (RFC 3849), isolated network: no route out

DEMO = [
    # tenant name, slug, user, network, hostname, domain
    ("Acme Corp", "acme", "alice", "acme-net", "acme-vm1", "acme.internal"),
    ("Globex", "globex", "bob", "globex-net", "globex-vm1", "globex.internal"),
]
# The administrators' tenant and its external network (simulated upstream at .1, no DHCP: routers take fixed
# addresses from the database IPAM).
OPERATORS = ("Operators", "ops")
EXTERNAL = ("public", {"cidr": "203.0.113.0/24", "gateway": "203.0.113.1", "enable_dhcp": False})
# The several-nodes demo network: tenant slug, network, subnet, hostnames.
SPREAD = ("acme", "acme-spread", "10.30.0.0/24", ("acme-vm2", "acme-vm3"))


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

    def _external(self) -> Network:
        name, slug = OPERATORS
        with transaction.atomic():
            operators = Tenant.objects.filter(slug=slug).first() or services.tenant_create(name=name, slug=slug)
            network_name, subnet = EXTERNAL
            return (Network.objects.filter(tenant=operators, name=network_name).first()
                    or routers.external_network_create(tenant=operators, name=network_name, subnet=dict(subnet),
                                                       simulated_upstream=True))

    def _routed(self, tenant: Tenant, network: Network, hostname: str, external: Network) -> str:
        """The tenant's router with the network's subnet attached, and a floating IP on its instance."""
        router = Router.objects.filter(tenant=tenant, name=f"{tenant.slug}-router").first()
        if router is None:
            router = routers.router_create(tenant=tenant, name=f"{tenant.slug}-router", external_network=external)
        subnet = network.subnets.get(ip_version=4)  # the IPv6 subnet stays isolated (no route out of 2001:db8::)
        if not router.interfaces.filter(subnet=subnet).exists():
            routers.router_interface_add(router=router, subnet=subnet)
        instance = network.instances.get(hostname=hostname)
        fip = FloatingIP.objects.filter(tenant=tenant, network=external).first()
        if fip is None:
            fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
        if fip.instance_id != instance.pk:
            fip = routers.floating_ip_associate(floating_ip=fip, instance=instance)
        return f"router {router.name!r} (SNAT {router.external_ip}), floating IP {fip.address}"

    def handle(self, *args, **options) -> None:
        self._user("admin", superuser=True, env="NETDASH_ADMIN_PASSWORD")
        User = get_user_model()
        external = self._external()
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
                routed = self._routed(tenant, network, hostname, external)
            self.stdout.write(f"demo tenant {name!r}: user {username!r}, network {network_name!r} 192.168.1.0/24, "
                              f"instance {hostname!r}, {routed}")
        if live_nodes().count() > 1:
            self.stdout.write(_spread())


def _spread() -> str:
    """The several-nodes demo network, its instances placed by the scheduler (compute nodes), not by hand."""
    slug, network_name, cidr, hostnames = SPREAD
    with transaction.atomic():
        tenant = Tenant.objects.get(slug=slug)
        network = (Network.objects.filter(tenant=tenant, name=network_name).first()
                   or services.network_create(tenant=tenant, name=network_name, subnet={"cidr": cidr}))
        for hostname in hostnames:
            if not network.instances.filter(hostname=hostname).exists():
                services.instance_create(network=network, hostname=hostname)
    servers = ", ".join(network.dhcp_servers.order_by("rank").values_list("node", flat=True))
    hosts = ", ".join(f"{i.hostname} on {i.node}" for i in network.instances.order_by("hostname"))
    return f"multi-node network {network_name!r} {cidr}: DHCP servers on {servers}; {hosts}"


def _dual_stack(network: Network) -> None:
    """Give a demo network its IPv6 subnet (before its instance is created, so the instance gets both families)."""
    cidr = DEMO_V6.get(network.name)
    if cidr is not None and not network.subnets.filter(ip_version=6).exists():
        services.subnet_create(network=network, cidr=cidr, ipv6_ra_mode="dhcpv6-stateful",
                               ipv6_address_mode="dhcpv6-stateful")
