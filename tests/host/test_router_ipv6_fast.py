"""Routed IPv6 is fast from the start: the router's ports skip DAD (kinds/router.py SYSCTLS6), so an instance
made on a freshly routed subnet autoconfigures from the router's answer to its *first* router solicitation.

Like the DHCP port (tests/host/test_ipv6_fast.py): while a port's link-local address is tentative the RA
daemon's answers leave with a global source, which instances drop (RFC 4861 §6.1.2), and the instance waits
for its RS retry 4 s later. No timed assertion: the tests read the port's address flags the moment
``ensure_router`` returns and count the instance's solicitations (the kernel's own per-device counter).
"""

from __future__ import annotations

import ipaddress

import pytest
from test_ipv6_fast import assert_autoconfigured_at_first_solicitation, assert_link_local_skips_dad
from test_router import network

from tenants.host import InstanceSpec, RouterAdvertSpec, RouterPortSpec, RouterSpec
from tenants.validators import eui64_address

pytestmark = pytest.mark.host

PREFIX = ipaddress.ip_network("2001:db8:66::/64")


def routed(nid: str, rid: str, port: str) -> RouterSpec:
    """A router with one port on ``nid`` holding ``PREFIX``'s gateway and advertising it for SLAAC."""
    return RouterSpec(rid, (RouterPortSpec(port, nid, ("10.0.6.1/24", f"{PREFIX[1]}/64"),
                                           (RouterAdvertSpec(str(PREFIX), "slaac"),)),), None)


def test_router_port_link_local_is_never_tentative(fast_driver):
    """The RA daemon's source (the port's link-local address) is usable as soon as the router exists."""
    d = fast_driver
    d.ensure_network(network("a661", "10.0.6.0/24"))
    d.ensure_router(routed("a661", "f661", "c661"))
    assert_link_local_skips_dad(d.names.router_ns("f661"), d.names.router_port("c661"))


def test_routed_instance_autoconfigures_from_its_first_solicitation(fast_driver):
    """A fresh network and router, then at once an instance: its SLAAC address comes with exactly one RS."""
    d, mac = fast_driver, "02:00:00:00:66:01"
    d.ensure_network(network("a662", "10.0.6.0/24"))
    d.ensure_router(routed("a662", "f662", "c662"))
    inst = d.ensure_instance(InstanceSpec("b662", "a662", mac, "vm", dhcpv4=False, dhcpv6=False))
    assert_autoconfigured_at_first_solicitation(inst.ns, d.names.inst_dev("b662"), str(eui64_address(PREFIX, mac)))
