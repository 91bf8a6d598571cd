"""Routers end to end: rows → RQ jobs (real Redis, a burst worker) → qrouter namespace, nftables, the simulated
upstream on the real kernel.

A tenant network 192.168.1.0/24 with one DHCP instance sits behind a router whose gateway is on the external
network 203.0.113.0/24 (TEST-NET-3, simulated upstream at .1 answering with the address it sees). Everything
carries this run's prefix and is removed even on failure.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from django.core.management import call_command
from router_helpers import UPSTREAM, ask, echo_in

from tenants import routers, services
from tenants.choices import LeaseState, ObjectStatus
from tenants.host import netns
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, Router, Tenant
from tenants.reconcile import reconcile
from tenants.testing import run_jobs, settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]

def _up(instance: Instance, router: Router) -> bool:
    instance.refresh_from_db()
    router.refresh_from_db()
    lease = driver().instance_lease(instance.kernel_id)
    return (instance.status == ObjectStatus.ACTIVE and router.status == ObjectStatus.ACTIVE and lease is not None
            and str(lease.ip) == instance.ip_address
            and Lease.objects.filter(instance=instance, state=LeaseState.ACTIVE).exists())


@pytest.fixture
def routed(host_clean, agent_queue, external_factory):
    """The topology above, realised by the agent's jobs; yields (router, instance, external network)."""
    external = external_factory(simulated_upstream=True, gateway=UPSTREAM, enable_dhcp=False)
    tenant = Tenant.objects.create(name="Tenant A", slug="ta")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "192.168.1.0/24"})
    router = routers.router_create(tenant=tenant, name="r1", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    instance = services.instance_create(network=network, hostname="vm1")
    assert settle(lambda: _up(instance, router)), (router.status_reason, instance.status_reason)
    yield router, instance, external


def test_instance_reaches_upstream_as_the_router_then_as_its_floating_ip(routed, tmp_path, capsys):
    router, instance, external = routed
    names = driver().names
    # The operator's view: the external network has no DHCP, so only its segment and no dnsmasq to miss.
    call_command("netns_status")
    [row] = [line for line in capsys.readouterr().out.splitlines() if "network public " in line]
    assert re.search(rf"{names.seg_ns(external.kernel_id)}\s+yes\s+none \(no DHCP\)\s+-$", row), row
    inst_ns, upstream_ns = names.inst_ns(instance.kernel_id), names.upstream_ns(external.kernel_id)
    assert netns.exists(names.router_ns(router.kernel_id))
    # SNAT: the upstream sees the router's external address, never the tenant address.
    assert ask(inst_ns, UPSTREAM) == router.external_ip
    # Upstream cannot reach the tenant address directly (no route, and none is ever added).
    with echo_in(inst_ns, str(tmp_path / "vm1-echo.pid")):
        assert ask(upstream_ns, instance.ip_address) == ""
        fip = routers.floating_ip_allocate(tenant=router.tenant, external_network=external)
        routers.floating_ip_associate(floating_ip=fip, instance=instance)
        run_jobs()
        # DNAT: the upstream reaches the instance at its floating IP (seeing the upstream's own address) ...
        assert ask(upstream_ns, fip.address) == UPSTREAM
        # ... and the instance goes out as its floating IP.
        assert ask(inst_ns, UPSTREAM) == fip.address
        routers.floating_ip_disassociate(floating_ip=fip)
        run_jobs()
        assert ask(upstream_ns, fip.address) == ""
        assert ask(inst_ns, UPSTREAM) == router.external_ip


def test_wiped_router_is_rebuilt_by_reconcile_and_deleted_router_goes(routed):
    router, instance, _ = routed
    names = driver().names
    rule_before = driver().router_ruleset(router.kernel_id)
    assert router.external_ip in rule_before
    driver().remove_routers([router.kernel_id])  # a wiped host, as far as this router is concerned
    assert not netns.exists(names.router_ns(router.kernel_id))
    report = reconcile()
    assert not report.errors, report.errors
    assert netns.exists(names.router_ns(router.kernel_id))
    assert router.external_ip in driver().router_ruleset(router.kernel_id)
    assert ask(names.inst_ns(instance.kernel_id), UPSTREAM) == router.external_ip
    # Reconcile does not reap a wanted router as an orphan; a deleted one goes with its row.
    routers.router_delete(router=router)
    run_jobs()
    assert not Router.objects.filter(pk=router.pk).exists()
    assert not netns.exists(names.router_ns(router.kernel_id))


def test_deleting_an_attached_network_removes_the_routers_port_and_keeps_the_router(routed):
    router, instance, _ = routed
    port = driver().names.router_port(router.interfaces.get().kernel_id)
    router_ns = driver().names.router_ns(router.kernel_id)

    def ports() -> str:
        return subprocess.run(["ip", "-n", router_ns, "-o", "link", "show"], capture_output=True, text=True,
                              timeout=20).stdout

    assert port in ports() and "192.168.1.0/24" in driver().router_ruleset(router.kernel_id)
    services.network_delete(network=instance.network)
    # The kernel takes the port with the segment; the router job drops the subnet's SNAT rule too.
    assert settle(lambda: not Router.objects.get(pk=router.pk).interfaces.exists() and port not in ports()
                  and "192.168.1.0/24" not in driver().router_ruleset(router.kernel_id))
    router.refresh_from_db()
    assert router.status == ObjectStatus.ACTIVE and netns.exists(router_ns)
