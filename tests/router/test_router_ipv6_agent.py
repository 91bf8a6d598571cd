"""Routed IPv6 end to end: rows → RQ jobs (real Redis, a burst worker) → the router's RAs, the instance's SLAAC
address and default route, the simulated upstream reached without NAT, on the real kernel.

A tenant network with 192.168.1.0/24 and a /64 from the subnet pool (slaac) sits behind a router whose gateway is
on the external network 203.0.113.0/24 + 2001:db8:ff::/64 (simulated upstream at .1 / ::1 answering with the
address it sees). Everything carries this run's prefix and is removed even on failure.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest
from router_helpers import UPSTREAM, ask

from tenants import routers, services, subnet_pools
from tenants.hostspecs import driver, names, router_external_ipv6
from tenants.models import Instance, Router, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

UPSTREAM6 = "2001:db8:ff::1"


def addresses6(ns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", ns, "-j", "-6", "addr"], capture_output=True, text=True, check=True).stdout
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])
            if a.get("scope") == "global" and not a.get("tentative")}  # usable: DAD done


def views(upstream_ns: str, router_ns: str) -> list[str]:
    """What to read when the upstream is not reached: both sides' IPv6 routes and addresses, the router's rules."""
    argvs = (["ip", "-n", upstream_ns, "-6", "route"], ["ip", "-n", upstream_ns, "-6", "addr"],
             ["ip", "-n", router_ns, "-6", "route"], ["ip", "-n", router_ns, "-6", "addr"],
             ["ip", "netns", "exec", router_ns, "nft", "list", "ruleset"])
    return [subprocess.run(a, capture_output=True, text=True).stdout for a in argvs]


def default6(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-6", "route", "show", "default"], capture_output=True, text=True,
                          check=True).stdout


def test_a_routed_pool_subnet_reaches_the_upstream_with_its_own_address(host_clean, agent_queue, external_factory):
    external = external_factory(simulated_upstream=True, gateway=UPSTREAM, enable_dhcp=False)
    services.subnet_create(network=external, cidr="2001:db8:ff::/64", gateway=UPSTREAM6,
                           ipv6_address_mode="dhcpv6-stateful", enable_dhcp=False)
    tenant = Tenant.objects.create(name="Tenant A", slug="ta")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "192.168.1.0/24"})
    v6 = subnet_pools.subnet_create_from_pool(network=network, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    router = routers.router_create(tenant=tenant, name="r1", external_network=external)
    for subnet in network.subnets.all():
        routers.router_interface_add(router=router, subnet=subnet)
    instance = services.instance_create(network=network, hostname="vm1")
    ns = names().inst_ns(instance.kernel_id)

    def up() -> bool:
        instance.refresh_from_db()
        return bool(instance.ipv6_address) and instance.ipv6_address in addresses6(ns) and "proto ra" in default6(ns)

    assert settle(up, timeout=60), (Router.objects.get(pk=router.pk).status_reason, addresses6(ns), default6(ns))
    assert ipaddress.ip_address(instance.ipv6_address) in v6.ip_network
    router_ll = default6(ns).split("via ", 1)[1].split()[0]  # the default route is the router's link-local ...
    qr = names().router_port(router.interfaces.order_by("pk").first().kernel_id)  # one port per network
    router_ns = names().router_ns(router.kernel_id)
    assert router_ll in subprocess.run(["ip", "-n", router_ns, "-6", "addr", "show", "dev", qr],
                                       capture_output=True, text=True, check=True).stdout
    dnsmasq = driver().scan_host()  # ... and the network's own dnsmasq no longer advertises the routed subnet
    assert dnsmasq.networks[network.kernel_id].dnsmasq_pid
    argv = open(f"/proc/{dnsmasq.networks[network.kernel_id].dnsmasq_pid}/cmdline").read().split("\0")
    assert "--enable-ra" not in argv, argv
    up_ns = names().upstream_ns(external.kernel_id)
    assert ask(ns, UPSTREAM6) == instance.ipv6_address, views(up_ns, router_ns)  # routed, not translated
    assert Instance.objects.get(pk=instance.pk).status == "active"
    ext6 = external.subnets.get(ip_version=6)
    assert str(router_external_ipv6(Router.objects.get(pk=router.pk), ext6).ip) in subprocess.run(
        ["ip", "-n", router_ns, "-6", "addr"], capture_output=True, text=True, check=True).stdout
