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
    d.ensure_network(_network(NEW))  # IPAM now gives the address to another MAC (reloaded with SIGHUP)


def test_forgotten_lease_is_offered_to_the_new_holder(driver):
    d = driver
    _vanish_without_release(d)
    assert d.forget_leases("f11", [(IP, OLD)]) == 1
    assert not _held_by_dnsmasq(d, OLD)  # returned after dnsmasq logged the release: no wait needed
    lease = d.ensure_instance(InstanceSpec("f02", "f11", NEW, "vm")).lease
    assert lease is not None and str(lease.ip) == IP
    assert wait_for(lambda: _held_by_dnsmasq(d, NEW))
    assert d.forget_leases("f11", [(IP, OLD)]) == 1  # idempotent: dnsmasq ignores an unknown lease
    assert _held_by_dnsmasq(d, NEW)


def test_without_forgetting_the_new_holder_gets_nothing(driver):
    """The failure itself, so the test above is known to guard something: dnsmasq refuses the address."""
    d = driver
    _vanish_without_release(d)
    d.ensure_instance(InstanceSpec("f02", "f11", NEW, "vm"), wait=False)
    assert d.wait_instance_lease("f02", timeout=6.0) is None
    assert "because it is leased to " + OLD in d.names.dnsmasq_log("f11").read_text()


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
