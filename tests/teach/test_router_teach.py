"""Router teaching: the inspector's router sections read from a real router, tenant-scoped, and the router's
equivalent commands replayed with bash into the same kernel state."""

from __future__ import annotations

import secrets
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse
from teach_helpers import ask_upstream

from teach import selectors
from teach import services as teach_services
from tenants import routers, services
from tenants.choices import ObjectStatus, Role
from tenants.host import HostConfig, LinuxHostDriver, netns, nft
from tenants.hostspecs import driver, host_config
from tenants.models import Router, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

UPSTREAM = "203.0.113.1"


@pytest.fixture
def routed(host_clean, agent_queue, user_factory):
    """Tenant ``ta`` (member ``user-ta``): 192.168.1.0/24 with one instance behind router r1, whose gateway is on a
    simulated-upstream external network 203.0.113.0/24; a second tenant's member ``user-tb`` sees none of it."""
    operators = Tenant.objects.create(name="Operators", slug="ops")
    external = routers.external_network_create(
        tenant=operators, name="public", simulated_upstream=True,
        subnet={"cidr": "203.0.113.0/24", "gateway": UPSTREAM, "enable_dhcp": False})
    tenant, other = Tenant.objects.create(name="Tenant A", slug="ta"), Tenant.objects.create(name="B", slug="tb")
    user, outsider = user_factory(username="user-ta"), user_factory(username="user-tb")
    services.membership_set(tenant=tenant, user=user, role=Role.MEMBER)
    services.membership_set(tenant=other, user=outsider, role=Role.MEMBER)
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "192.168.1.0/24"})
    router = routers.router_create(tenant=tenant, name="r1", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    instance = services.instance_create(network=network, hostname="vm1")

    def up() -> bool:
        instance.refresh_from_db()
        router.refresh_from_db()
        lease = driver().instance_lease(instance.kernel_id)
        return (instance.status == ObjectStatus.ACTIVE and router.status == ObjectStatus.ACTIVE
                and lease is not None and str(lease.ip) == instance.ip_address)

    assert settle(up), (router.status_reason, instance.status_reason)
    return {"router": router, "instance": instance, "external": external, "user": user, "outsider": outsider}


def test_router_inspector_shows_ports_nat_counters_and_conntrack(client, routed, agent_thread):
    router, instance = routed["router"], routed["instance"]
    inst_ns = driver().names.inst_ns(instance.kernel_id)
    assert ask_upstream(inst_ns, UPSTREAM) == router.external_ip
    state = teach_services.router_inspect(router=router)
    assert state["error"] is None
    addresses = {(a["address"], a["prefixlen"], a["dev_role"]) for a in state["addresses"]}
    assert ("192.168.1.1", 24, "router port (qr)") in addresses
    assert (router.external_ip, 24, "gateway port (qg)") in addresses
    assert any(r["dst"] == "default" and r["gateway"] == UPSTREAM for r in state["routes"])
    snat = [r for r in state["nat"] if f"ip saddr 192.168.1.0/24 counter snat to {router.external_ip}" in r["rule"]]
    assert len(snat) == 1 and snat[0]["chain"] == "postrouting" and snat[0]["packets"] >= 1
    flows = [f for f in state["conntrack"] if f["dport"] == "7007"]
    assert flows and all(f["src"] == instance.ip_address and f["dst"] == UPSTREAM
                         and f["reply_dst"] == router.external_ip for f in flows)
    client.force_login(routed["user"])
    assert reverse("teach:router-inspect", args=[router.pk]) in client.get(reverse("teach:index")).content.decode()
    page = client.get(reverse("teach:router-inspect", args=[router.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert f"snat to {router.external_ip}" in text and f"{instance.ip_address}:{flows[0]['sport']}" in text
    # Another tenant's member: the router does not exist for them, inspector and commands alike.
    client.force_login(routed["outsider"])
    assert reverse("teach:router-inspect", args=[router.pk]) not in client.get(reverse("teach:index")).content.decode()
    assert client.get(reverse("teach:router-inspect", args=[router.pk])).status_code == 404
    assert client.get(reverse("teach:router-commands", args=[router.pk])).status_code == 404


def _router_state(d: LinuxHostDriver, router: Router) -> dict[str, object]:
    """Addresses, routes and NAT table of a router's namespace, the driver's prefix replaced by ``P-``."""
    ns = d.names.router_ns(router.kernel_id)

    def ip(*args: str, words: slice = slice(None)) -> list[str]:
        out = subprocess.run(["ip", "-n", ns, "-4", "-o", *args], check=True, capture_output=True, text=True).stdout
        return sorted(" ".join(line.split()[words]).replace(d.names.prefix, "P-") for line in out.splitlines())

    # The driver's netlink RouteReplace marks its route "proto static"; `ip route replace` leaves the default
    # ("boot", not printed). Only that label differs, so it is dropped here (reported to the ops owner).
    routes = [r.removesuffix(" proto static") for r in ip("route", "show")]
    return {"addresses": ip("addr", "show", words=slice(1, 4)), "routes": routes,
            "nft": nft.canonical(d.router_ruleset(router.kernel_id)).replace(d.names.prefix, "P-")}


def test_router_commands_replay_with_bash_into_the_same_state(client, routed):
    router = routed["router"]
    client.force_login(routed["user"])
    page = client.get(reverse("teach:router-commands", args=[router.pk])).content.decode()
    assert "ip netns add" in page and "nft -f -" in page and "conntrack -L" in page
    assert "net.ipv4.ip_forward" in page
    prefix = "r" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(3)) + "-"
    with tempfile.TemporaryDirectory(prefix="teach-router-replay-") as tmp:
        Path(tmp).chmod(0o755)  # dnsmasq drops privileges and must reach its files
        fresh = LinuxHostDriver(HostConfig(prefix=prefix, state_dir=Path(tmp) / "state",
                                           dnsmasq=host_config().dnsmasq, busybox=host_config().busybox))
        try:
            script = selectors.as_script(selectors.router_commands(router, host_driver=fresh))
            r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
            replayed, original = _router_state(fresh, router), _router_state(driver(), router)
            assert replayed == original
            assert f"snat to {router.external_ip}" in replayed["nft"]
            assert netns.exists(driver().names.router_ns(router.kernel_id))  # a copy beside the original
        finally:
            fresh.remove_orphans(set(), set(), wanted_routers=set())
            assert not [n for n in netns.list_names() if n.startswith(prefix)]
