"""The heart of the product, end to end: database rows → RQ jobs (real Redis) → namespaces, dnsmasq, udhcpc.

Real kernel, real dnsmasq, real DHCP exchanges. Each test removes everything with this run's prefix.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from django.core.management import call_command

from tenants import jobs, services
from tenants.choices import LeaseEventKind, LeaseState, ObjectStatus
from tenants.host import netns
from tenants.host.process import wait_gone
from tenants.hostspecs import driver
from tenants.models import DhcpServer, Instance, Lease, LeaseEvent, Network, Tenant
from tenants.testing import run_jobs, settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def _ns(cmd: list[str], ns: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=20)


def _leased(instance: Instance) -> bool:
    return Lease.objects.filter(instance=instance, state=LeaseState.ACTIVE, ip_address=instance.ip_address).exists()


def _holds(instance: Instance) -> bool:
    """The instance itself has configured its address (jobs start DHCP clients without waiting, so the row can
    turn active a few milliseconds before the client's script has finished)."""
    lease = driver().instance_lease(instance.kernel_id)
    return lease is not None and str(lease.ip) == instance.ip_address


def _active(*instances: Instance) -> bool:
    return all(Instance.objects.get(pk=i.pk).status == ObjectStatus.ACTIVE and _leased(i) and _holds(i)
               for i in instances)


@pytest.fixture
def two_tenants(host_clean, agent_queue):
    """Two tenants, both 192.168.1.0/24, one instance each, realised by the agent's jobs."""
    made = []
    for slug in ("ta", "tb"):
        tenant = Tenant.objects.create(name=f"Tenant {slug}", slug=slug)
        network = services.network_create(tenant=tenant, name="net",
                                          subnet={"cidr": "192.168.1.0/24", "domain_name": f"{slug}.internal"})
        instance = services.instance_create(network=network, hostname=f"{slug}-vm1")
        made.append((tenant, network, instance))
    assert settle(lambda: _active(made[0][2], made[1][2])), "instances did not lease"
    return made


def test_overlapping_tenants_lease_from_their_own_dnsmasq(two_tenants):
    d = driver()
    (ta, na, ia), (tb, nb, ib) = two_tenants
    na.refresh_from_db()
    nb.refresh_from_db()
    assert na.status == nb.status == ObjectStatus.ACTIVE
    # Same address inside each tenant's range, held in two different namespaces.
    assert ia.ip_address == ib.ip_address == "192.168.1.3"
    for instance in (ia, ib):
        lease = d.instance_lease(instance.kernel_id)
        assert lease is not None and str(lease.ip) == instance.ip_address
        addr = _ns(["ip", "-4", "-o", "addr", "show"], d.names.inst_ns(instance.kernel_id)).stdout
        assert f"{instance.ip_address}/24" in addr
    # Two different dnsmasq processes, each in its own DHCP namespace.
    pids = {d.dnsmasq_pid(na.kernel_id), d.dnsmasq_pid(nb.kernel_id)}
    assert None not in pids and len(pids) == 2
    # Each instance reaches only its own DHCP server: the MAC answering 192.168.1.2 is its network's dnsmasq port.
    answering = {}
    for network, instance in ((na, ia), (nb, ib)):
        ns = d.names.inst_ns(instance.kernel_id)
        assert _ns(["busybox", "ping", "-c", "1", "-W", "2", "192.168.1.2"], ns).returncode == 0
        neigh = _ns(["ip", "neigh", "show", "192.168.1.2"], ns).stdout.split()
        answering[network.pk] = neigh[neigh.index("lladdr") + 1]
        dhcp_link = _ns(["ip", "-o", "link", "show", d.names.dhcp_dev(network.kernel_id)],
                        d.names.dhcp_ns(network.kernel_id)).stdout
        assert answering[network.pk] in dhcp_link
    assert answering[na.pk] != answering[nb.pk]
    # Leases are recorded per tenant, with their history.
    assert Lease.objects.get(subnet__network__tenant=ta, state=LeaseState.ACTIVE).mac_address == ia.mac_address
    assert Lease.objects.get(subnet__network__tenant=tb, state=LeaseState.ACTIVE).mac_address == ib.mac_address
    assert LeaseEvent.objects.filter(subnet__network=na, kind=LeaseEventKind.ADD).count() == 1


def test_dns_inside_the_network_answers_instance_names_only(two_tenants, agent_queue):
    (ta, na, ia), _ = two_tenants
    other = services.instance_create(network=na, hostname="ta-vm2")
    assert settle(lambda: _active(other))
    ns = driver().names.inst_ns(ia.kernel_id)
    found = _ns(["busybox", "nslookup", "ta-vm2.ta.internal", "192.168.1.2"], ns)
    assert other.ip_address in found.stdout, found.stdout + found.stderr
    # Nothing is forwarded: a name outside the network does not resolve.
    outside = _ns(["busybox", "nslookup", "example.com", "192.168.1.2"], ns)
    assert outside.returncode != 0 or "Address" not in outside.stdout.split("example.com", 1)[-1]


def test_fixed_ip_and_reservation_change_reloads_and_moves(two_tenants, agent_queue):
    d = driver()
    (ta, na, ia), _ = two_tenants
    fixed = services.instance_create(network=na, hostname="fixed", ip_address="192.168.1.77")
    assert settle(lambda: _active(fixed))
    assert str(d.instance_lease(fixed.kernel_id).ip) == "192.168.1.77"
    dnsmasq_pid = d.dnsmasq_pid(na.kernel_id)
    services.instance_update(instance=fixed, ip_address="192.168.1.88")
    fixed.refresh_from_db()
    assert settle(lambda: str(getattr(d.instance_lease(fixed.kernel_id), "ip", "")) == "192.168.1.88"
                  and _leased(fixed))
    assert d.dnsmasq_pid(na.kernel_id) == dnsmasq_pid, "a reservation change must reload (SIGHUP), not restart"
    assert "192.168.1.88" in d.names.hosts(na.kernel_id).read_text()


def test_delete_instance_releases_and_delete_network_leaves_nothing(two_tenants, agent_queue):
    d = driver()
    (ta, na, ia), (tb, nb, ib) = two_tenants
    services.instance_delete(instance=ia)
    run_jobs()
    assert not Instance.objects.filter(pk=ia.pk).exists()
    assert not netns.exists(d.names.inst_ns(ia.kernel_id))
    lease = Lease.objects.get(subnet__network=na, mac_address=ia.mac_address)
    assert lease.state == LeaseState.RELEASED
    assert LeaseEvent.objects.filter(lease=lease, kind=LeaseEventKind.RELEASE).exists()
    assert ia.mac_address not in d.names.hosts(na.kernel_id).read_text()
    # Tenant B is untouched.
    assert _active(ib)
    for network in (na, nb):
        services.network_delete(network=network)
    run_jobs()
    assert not Network.objects.exists()
    prefix = d.config.prefix
    assert [n for n in netns.list_names() if n.startswith(prefix)] == []
    assert not any(p.name.startswith(prefix) for p in d.config.state_dir.glob("*"))


def test_address_of_an_instance_deleted_without_its_release_goes_to_the_next_instance(two_tenants):
    """The instance's DHCP client never sends its DHCPRELEASE (frozen, so the stop ends in SIGKILL): deleting it
    still frees the address in dnsmasq, and the next instance IPAM gives it to leases it (the soak found one
    waiting forever on "no address available … leased to <old MAC>")."""
    d = driver()
    (ta, na, ia), _ = two_tenants
    os.kill(d.udhcpc_pid(ia.kernel_id), signal.SIGSTOP)
    services.instance_delete(instance=ia)
    run_jobs()
    successor = services.instance_create(network=na, hostname="ta-vm2")
    assert successor.ip_address == ia.ip_address  # IPAM hands out the lowest free address again
    assert settle(lambda: _active(successor), timeout=20), "the address stayed leased to the deleted instance"
    assert (ia.ip_address, ia.mac_address) not in {(str(e.ip), e.mac) for e in d.network_leases(na.kernel_id)}


def test_reconcile_restarts_killed_dnsmasq_and_instances_keep_their_ip(two_tenants):
    d = driver()
    (ta, na, ia), _ = two_tenants
    old = d.dnsmasq_pid(na.kernel_id)
    before = d.instance_lease(ia.kernel_id)
    os.kill(old, signal.SIGKILL)
    wait_gone(old)  # SIGKILL is asynchronous: without this, reconcile may still see it alive
    report = jobs.reconcile()
    assert "net" in report.realised_networks
    new = d.dnsmasq_pid(na.kernel_id)
    assert new is not None and new != old
    d.renew_instance(ia.kernel_id)
    lease = d.wait_instance_lease(ia.kernel_id, lambda lease: lease.obtained > before.obtained, timeout=20)
    assert lease is not None, "the instance got no new lease from the restarted dnsmasq"
    assert str(lease.ip) == ia.ip_address


def test_reconcile_rebuilds_after_namespaces_vanish_and_removes_orphans(two_tenants):
    d = driver()
    (ta, na, ia), (tb, nb, ib) = two_tenants
    prefix = d.config.prefix
    # "Reboot": every namespace and process of ours disappears behind the app's back (state files survive).
    d.remove_orphans(set(), set())
    for name in netns.list_names():
        assert not name.startswith(prefix)
    orphan = d.names.inst_ns("0bad0bad")
    netns.create(orphan)
    report = jobs.reconcile()
    assert set(report.realised_networks) == {"net"}
    assert any("0bad0bad" in line for line in report.removed_orphans)
    assert not netns.exists(orphan)
    assert settle(lambda: all(str(getattr(d.instance_lease(i.kernel_id), "ip", "")) == i.ip_address
                              for i in (ia, ib)))
    assert _active(ia, ib)


def test_jobs_are_idempotent(two_tenants):
    d = driver()
    (ta, na, ia), _ = two_tenants
    # Only this run's namespaces: other test runs and benchmarks share the host.
    ours = lambda: sorted(n for n in netns.list_names() if n.startswith(d.config.prefix))  # noqa: E731
    before = (d.dnsmasq_pid(na.kernel_id), d.udhcpc_pid(ia.kernel_id), ours())
    assert jobs.realise_network(na.pk) == "active"
    assert jobs.realise_instance(ia.pk) == "started"
    after = (d.dnsmasq_pid(na.kernel_id), d.udhcpc_pid(ia.kernel_id), ours())
    assert before == after
    assert not jobs.reconcile().changed


def test_a_realise_job_for_a_network_that_left_this_node_removes_what_is_left_instead_of_building_it(two_tenants):
    """Why: a job queued for a node while it was down runs once its agent is back, and by then the network's DHCP
    duty may have moved away (``tenants.failover``); building it again would undo the move (the node-loss drill
    found the returning node holding the segment namespace of a network it no longer had)."""
    d = driver()
    (_, na, ia), (_, nb, ib) = two_tenants
    Network.objects.filter(pk=na.pk).update(node="elsewhere")
    DhcpServer.objects.filter(network=na).update(node="elsewhere")
    Instance.objects.filter(network=na).update(node="elsewhere")
    assert jobs.realise_network(na.pk) == "not on this node"
    gone = (d.names.seg_ns(na.kernel_id), d.names.dhcp_ns(na.kernel_id), d.names.inst_ns(ia.kernel_id))
    assert not [ns for ns in gone if netns.exists(ns)]
    assert d.dnsmasq_pid(nb.kernel_id) is not None and _holds(ib)  # the other network is untouched


def test_an_instance_job_starts_the_networks_waiting_instances_of_this_node_only(host_clean, agent_queue):
    """A realise_instance job starts every instance of its network still waiting for a client, but only those of
    its own node: one scheduled on another node is that node's to start (here it would have shared its MAC)."""
    tenant = Tenant.objects.create(name="Nodes", slug="nodes")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.4.0.0/24"})
    mine, theirs, later = (services.instance_create(network=network, hostname=h) for h in ("mine", "theirs", "later"))
    Instance.objects.filter(pk=theirs.pk).update(node="elsewhere")
    assert jobs.realise_instance(mine.pk) == "started"  # converges the network, then starts what waits
    d = driver()
    assert d.udhcpc_pid(mine.kernel_id) is not None and d.udhcpc_pid(later.kernel_id) is not None  # the batch
    assert not netns.exists(d.names.inst_ns(theirs.kernel_id))


def test_status_error_has_a_readable_reason(host_clean, agent_queue, settings):
    good = settings.NETDASH_DNSMASQ
    settings.NETDASH_DNSMASQ = "/nonexistent/dnsmasq"
    from tenants import hostspecs

    hostspecs.host_config.cache_clear()
    hostspecs.driver.cache_clear()
    try:
        tenant = Tenant.objects.create(name="Err", slug="err")
        network = services.network_create(tenant=tenant, name="broken", subnet={"cidr": "10.9.0.0/24"})
        with pytest.raises(AssertionError, match="job"):
            run_jobs()
        network.refresh_from_db()
        assert network.status == ObjectStatus.ERROR
        assert "dnsmasq" in network.status_reason
    finally:
        # Restore before clearing: ``settings`` is autouse (tests/conftest.py), so it is restored only after
        # host_clean's teardown, which would otherwise cache a driver with the broken path for later tests.
        settings.NETDASH_DNSMASQ = good
        hostspecs.host_config.cache_clear()
        hostspecs.driver.cache_clear()


def test_netns_status_and_reconcile_commands(two_tenants, capsys):
    call_command("netns_status")
    out = capsys.readouterr().out
    assert "ta-vm1" in out and "tb-vm1" in out and "dead" not in out and " NO " not in out
    call_command("reconcile")
    assert "nothing to do" in capsys.readouterr().out
