"""Routers end to end, as a tenant uses them: services → agent jobs (real Redis, a burst worker) → real kernel.

One topology per test, built only through the services, realised by the agent's jobs:

- an external network 203.0.113.0/24 (TEST-NET-3) with the simulated upstream at .1 (echo service: it answers
  with the address it sees the caller as);
- tenant A: ``front`` 192.168.1.0/24 with ``web`` (.3, its floating IP) and ``peer`` (.4, none), ``back``
  10.10.0.0/24 with ``db``, both behind router ``ra``;
- tenant B: the same 192.168.1.0/24 with ``web`` at the same .3, behind its own router ``rb``.

Everything carries this run's prefix and is removed even on failure; the root namespace is compared before/after.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest
from router_helpers import UPSTREAM, ask, echo_in

from tenants import routers, services
from tenants.choices import LeaseState, ObjectStatus
from tenants.host import netns
from tenants.hostspecs import driver
from tenants.models import FloatingIP, Instance, Lease, Network, Router, Tenant
from tenants.reconcile import reconcile
from tenants.testing import run_jobs, settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def ns_run(ns: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=30)


def root_view() -> list[str]:
    """The root namespace's links, addresses and routes: what a router must never touch."""
    return [subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout
            for argv in (["-br", "link"], ["-br", "addr"], ["route"], ["-6", "route"])]


@dataclass
class World:
    """The topology of the module docstring, by role."""

    external: Network
    ra: Router
    rb: Router
    web: Instance
    peer: Instance
    db: Instance
    web_b: Instance
    fip: FloatingIP

    def ns(self, instance: Instance) -> str:
        return driver().names.inst_ns(instance.kernel_id)

    @property
    def upstream_ns(self) -> str:
        return driver().names.upstream_ns(self.external.kernel_id)


def _leased(instances: list[Instance], routers_: list[Router]) -> bool:
    for row in (*instances, *routers_):
        row.refresh_from_db()
    return (all(r.status == ObjectStatus.ACTIVE for r in (*instances, *routers_))
            and all((lease := driver().instance_lease(i.kernel_id)) is not None and str(lease.ip) == i.ip_address
                    and Lease.objects.filter(instance=i, state=LeaseState.ACTIVE).exists() for i in instances))


@pytest.fixture
def world(host_clean, agent_queue, external_factory) -> World:
    external = external_factory(simulated_upstream=True, gateway=UPSTREAM, enable_dhcp=False)
    a, b = Tenant.objects.create(name="Tenant A", slug="ta"), Tenant.objects.create(name="Tenant B", slug="tb")
    front = services.network_create(tenant=a, name="front", subnet={"cidr": "192.168.1.0/24"})
    back = services.network_create(tenant=a, name="back", subnet={"cidr": "10.10.0.0/24"})
    net_b = services.network_create(tenant=b, name="front", subnet={"cidr": "192.168.1.0/24"})
    ra = routers.router_create(tenant=a, name="ra", external_network=external)
    rb = routers.router_create(tenant=b, name="rb", external_network=external)
    for router, network in ((ra, front), (ra, back), (rb, net_b)):
        routers.router_interface_add(router=router, subnet=network.subnets.get())
    web = services.instance_create(network=front, hostname="web", ip_address="192.168.1.3")
    peer = services.instance_create(network=front, hostname="peer", ip_address="192.168.1.4")
    db = services.instance_create(network=back, hostname="db")
    web_b = services.instance_create(network=net_b, hostname="web", ip_address="192.168.1.3")
    fip = routers.floating_ip_allocate(tenant=a, external_network=external)
    routers.floating_ip_associate(floating_ip=fip, instance=web)
    assert settle(lambda: _leased([web, peer, db, web_b], [ra, rb]), timeout=90), (
        ra.status_reason, rb.status_reason, [i.status_reason for i in (web, peer, db, web_b)])
    fip.refresh_from_db()
    return World(external, ra, rb, web, peer, db, web_b, fip)


def test_routed_world_as_each_side_sees_it(world, tmp_path):
    """Every path of the routed topology, one assertion per path of issue 14, on one build."""
    root = root_view()
    w = world
    # East-west between two subnets of one tenant: exactly one routed hop, and never translated.
    ping = ns_run(w.ns(w.db), "busybox", "ping", "-c", "1", "-W", "5", w.web.ip_address)
    assert "ttl=63" in ping.stdout, ping.stdout + ping.stderr
    # SNAT: the upstream sees each router's external address, never a tenant address.
    assert ask(w.ns(w.peer), UPSTREAM) == w.ra.external_ip
    assert ask(w.ns(w.db), UPSTREAM) == w.ra.external_ip
    # Two tenants, the same CIDR and the same instance address, behind two routers: two different sources.
    assert w.web.ip_address == w.web_b.ip_address
    assert ask(w.ns(w.web_b), UPSTREAM) == w.rb.external_ip != w.ra.external_ip
    # The floating IP is the instance's source address outside.
    assert ask(w.ns(w.web), UPSTREAM) == w.fip.address
    with echo_in(w.ns(w.web), str(tmp_path / "web-echo.pid")):
        # Reachable from upstream at the floating IP; the instance sees the real caller.
        assert ask(w.upstream_ns, w.fip.address) == UPSTREAM
        # Hairpin from a neighbour on the same subnet: reaches it, SNATed so the reply returns via the router.
        assert ask(w.ns(w.peer), w.fip.address) == w.ra.external_ip
        # East-west through the router keeps the caller's own address.
        assert ask(w.ns(w.db), w.web.ip_address) == w.db.ip_address
        # The upstream cannot reach tenant addresses directly (it has no route there, and none is ever added).
        assert ask(w.upstream_ns, w.web.ip_address) == ""
    # Each router's conntrack holds only its own tenant's flows.
    ct_a, ct_b = driver().router_conntrack(w.ra.kernel_id), driver().router_conntrack(w.rb.kernel_id)
    assert any(w.ra.external_ip in line for line in ct_a) and not any(w.rb.external_ip in line for line in ct_a)
    assert any(w.rb.external_ip in line for line in ct_b) and not any(w.ra.external_ip in line for line in ct_b)
    assert root_view() == root


def test_faults_flushed_rules_router_deleted_with_a_floating_ip_and_tenant_deleted(world):
    """Rules flushed behind the agent's back come back with reconcile; a router deleted while its floating IP is
    associated releases it cleanly; deleting a tenant takes its routers' namespaces with it, at once."""
    w = world
    names = driver().names
    ra_ns, rb_ns = names.router_ns(w.ra.kernel_id), names.router_ns(w.rb.kernel_id)
    assert w.fip.address in driver().router_ruleset(w.ra.kernel_id)
    for ns in (ra_ns, rb_ns):
        assert ns_run(ns, "nft", "flush", "ruleset").returncode == 0
    assert "snat" not in driver().router_ruleset(w.ra.kernel_id)
    assert ask(w.ns(w.peer), UPSTREAM) == ""  # no SNAT: the reply has no way back
    report = reconcile()
    assert not report.errors, report.errors
    assert {"ra", "rb"} <= set(report.converged_routers)
    assert not report.removed_orphans, report.removed_orphans  # a router namespace is never an orphan
    assert ask(w.ns(w.peer), UPSTREAM) == w.ra.external_ip
    assert ask(w.ns(w.web), UPSTREAM) == w.fip.address
    assert ask(w.ns(w.web_b), UPSTREAM) == w.rb.external_ip

    # Router deleted with its floating IP associated: the FIP stays the tenant's, unassociated, untranslated.
    routers.router_delete(router=w.ra)
    run_jobs()
    assert not Router.objects.filter(pk=w.ra.pk).exists() and not netns.exists(ra_ns)
    w.fip.refresh_from_db()
    assert w.fip.instance_id is None and w.fip.tenant_id == w.web.network.tenant_id
    assert ask(w.upstream_ns, w.fip.address) == ""
    routers.floating_ip_release(floating_ip=w.fip)
    assert not FloatingIP.objects.filter(pk=w.fip.pk).exists()

    # Deleting a tenant removes its router's namespace with its networks, not at the next reconcile.
    services.tenant_delete(tenant=w.rb.tenant)
    assert settle(lambda: not Tenant.objects.filter(slug="tb").exists(), timeout=60)
    assert not Router.objects.filter(pk=w.rb.pk).exists()
    assert not netns.exists(rb_ns)
    assert w.rb.kernel_id not in driver().scan_host().routers
