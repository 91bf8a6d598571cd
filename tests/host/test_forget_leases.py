"""An address whose holder vanished without a DHCPRELEASE goes to the next instance at once (real dnsmasq).

The soak drill found the failure this guards: an instance removed without its release (killed, or not leased
yet) left its lease in dnsmasq; IPAM gave the address to a new instance, and dnsmasq answered it ``no address
available`` ("not using configured address … because it is leased to <old MAC>") until the old lease expired.
"""

from __future__ import annotations

import os

import pytest
from host_helpers import wait_for

from tenants.host import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)

OLD, NEW, IP = "02:00:00:00:0f:01", "02:00:00:00:0f:02", "192.168.1.50"


def _network(mac: str) -> NetworkSpec:
    subnet = SubnetSpec(cidr="192.168.1.0/24", gateway="192.168.1.1", dhcp_address="192.168.1.2",
                        domain="t1.internal", lease_seconds=3600)
    return NetworkSpec("f11", (subnet,), (ReservationSpec(mac, "vm", IP),))


def _held_by_dnsmasq(d, mac: str) -> bool:
    return (IP, mac) in {(str(e.ip), e.mac) for e in d.network_leases("f11")}


def _vanish_without_release(d) -> None:
    """The old instance holds the address, then disappears the way a killed one does: no DHCPRELEASE."""
    d.ensure_network(_network(OLD))
    held = d.ensure_instance(InstanceSpec("f01", "f11", OLD, "vm")).lease
    assert held is not None and str(held.ip) == IP
    d.remove_instance("f01", release=False)
    assert _held_by_dnsmasq(d, OLD), "dnsmasq should still hold the lease of a client that never released"


@pytest.mark.parametrize("converge", ["ensure_network", "refresh_network"])
def test_the_new_reservation_forgets_the_vanished_holders_lease(driver, converge):
    """IPAM gives the address to another MAC: realising that (a full ensure, or the jobs' fast path) also drops
    the lease its reservation no longer backs, and the new holder leases the address at once."""
    d = driver
    _vanish_without_release(d)
    assert getattr(d, converge)(_network(NEW))
    assert not _held_by_dnsmasq(d, OLD)  # returned after dnsmasq logged the release: no wait needed
    lease = d.ensure_instance(InstanceSpec("f02", "f11", NEW, "vm")).lease
    assert lease is not None and str(lease.ip) == IP
    assert wait_for(lambda: _held_by_dnsmasq(d, NEW))
    d.ensure_network(_network(NEW))  # converging again keeps the lease its reservation backs
    assert _held_by_dnsmasq(d, NEW)


def test_forget_leases_is_idempotent(driver):
    d = driver
    _vanish_without_release(d)
    assert d.forget_leases("f11", [(IP, OLD)]) == 1
    assert not _held_by_dnsmasq(d, OLD)
    assert d.forget_leases("f11", [(IP, OLD)]) == 1  # dnsmasq ignores an unknown lease
    assert d.forget_leases("f11", [("2001:db8::5", OLD)]) == 0  # IPv4 only


def test_stopped_dnsmasq_forgets_from_its_lease_file(driver):
    d = driver
    _vanish_without_release(d)
    os.kill(d.dnsmasq_pid("f11"), 15)
    assert wait_for(lambda: d.dnsmasq_pid("f11") is None)
    assert _held_by_dnsmasq(d, OLD)  # dnsmasq wrote its leases on the way out
    assert d.forget_leases("f11", [(IP, OLD)]) == 1
    assert not _held_by_dnsmasq(d, OLD)
    d.ensure_network(_network(NEW))  # starts dnsmasq again from the edited file
    lease = d.ensure_instance(InstanceSpec("f02", "f11", NEW, "vm")).lease
    assert lease is not None and str(lease.ip) == IP


def test_refuses_bad_input(driver):
    with pytest.raises(Exception, match="(?i)mac|address"):
        driver.forget_leases("f11", [(IP, "not-a-mac")])
    with pytest.raises(Exception, match="(?i)address"):
        driver.forget_leases("f11", [("192.168.1.50;rm", OLD)])
