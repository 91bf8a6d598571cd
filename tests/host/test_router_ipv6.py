"""Routed IPv6 on the real kernel: RAs from the router, east-west and to the upstream without NAT, the filter.

Topology (every name under the test's own prefix, removed even on failure)::

    vm ia ── net A (10.0.1.0/24, 2001:db8:a1::/64 slaac) ─────────────┐
                                                                       router R: qr ::1 of each, RA daemon;
    vm ib ── net B (10.0.2.0/24, 2001:db8:b1::/64 dhcpv6-stateless) ──┘  qg 2001:db8:ff::10, default via ::1
                        net E (203.0.113.0/24, 2001:db8:ff::/64) ── upstream 2001:db8:ff::1, routes back via ::10

The instances are plain namespaces with fast SLAAC sysctls (no client: the kernel configures itself from the
router's RA); each runs the upstream's echo service, so every check reads "who does the other side think I am".
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import replace

import pytest
from host_helpers import ipv6_addresses, ns_exec, router_advertisement, wait_for
from hypothesis import given, settings
from hypothesis import strategies as st
from test_router import network, root_view

from tenants.host import (
    UPSTREAM_ECHO_PORT,
    HostInputError,
    RouterAdvertSpec,
    RouterGatewaySpec,
    RouterPortSpec,
    RouterSpec,
    UpstreamSpec,
    netns,
    nft,
)
from tenants.host.kinds import router
from tenants.host.kinds.upstream import SCRIPT

UPSTREAM6 = "2001:db8:ff::1"
EXTERNAL6 = "2001:db8:ff::10"
PREFIX_A, PREFIX_B = "2001:db8:a1::/64", "2001:db8:b1::/64"


def router_spec(mode_b: str = "dhcpv6-stateless") -> RouterSpec:
    return RouterSpec("f6", (
        RouterPortSpec("a2", "a1", ("10.0.1.1/24", "2001:db8:a1::1/64"), (RouterAdvertSpec(PREFIX_A, "slaac"),)),
        RouterPortSpec("b2", "b1", ("10.0.2.1/24", "2001:db8:b1::1/64"), (RouterAdvertSpec(PREFIX_B, mode_b),)),
    ), RouterGatewaySpec("e1", "203.0.113.10/24", "203.0.113.1", address6=f"{EXTERNAL6}/64", gateway6=UPSTREAM6))


def upstream_spec() -> UpstreamSpec:
    return UpstreamSpec("e1", "203.0.113.1/24", address6=f"{UPSTREAM6}/64",
                        routes6=((PREFIX_A, EXTERNAL6), (PREFIX_B, EXTERNAL6)))


def add_vm(driver, name: str, net_id: str, address: str) -> str:
    """A namespace on the network's bridge with a static IPv4 address and IPv6 left to the router's RA (fast:
    no solicitation delay, no DAD), running an echo service."""
    n, p = driver.names, driver.config.prefix
    ns, port = f"{p}vm-{name}", f"{p}t{name}"
    netns.create(ns)
    for argv in (["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                  "netns", n.seg_ns(net_id)],
                 ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.router_solicitation_delay=0",
                  "net.ipv6.conf.eth0.accept_dad=0"],
                 ["ip", "-n", n.seg_ns(net_id), "link", "set", port, "master", n.bridge(net_id), "up"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", "eth0", "up"],
                 ["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"]):
        subprocess.run(argv, check=True, capture_output=True, text=True)
    ns_exec(ns, sys.executable, str(SCRIPT), str(UPSTREAM_ECHO_PORT), str(driver.config.state_dir / f"vm-{name}.pid"))
    return ns


def global_address(ns: str) -> str:
    """The instance's SLAAC address, once the router's RA gave it one (and the default route with it)."""
    def found() -> str | None:
        addrs = [a["local"] for a in ipv6_addresses(ns, "eth0") if a.get("scope") == "global"]
        routes = ns_exec(ns, "ip", "-6", "route", "show", "default").stdout
        return addrs[0] if addrs and "proto ra" in routes else None
    address = wait_for(found, timeout=30, step=0.1)
    assert address, ns_exec(ns, "ip", "-6", "addr").stdout
    return address


def ask(ns: str, address: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    """Connect to ``address``'s echo service from ``ns``: stdout is the address it saw us as."""
    code = ("import socket,sys; "
            "s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])); "
            "print(s.recv(64).decode().strip())")
    return ns_exec(ns, sys.executable, "-c", code, address, str(UPSTREAM_ECHO_PORT), str(timeout), check=False)


@pytest.fixture
def topo(driver):
    driver.config.state_dir.mkdir(parents=True, exist_ok=True)
    before = root_view6()
    for nid, cidr in (("a1", "10.0.1.0/24"), ("b1", "10.0.2.0/24"), ("e1", "203.0.113.0/24")):
        driver.ensure_network(network(nid, cidr))
    assert driver.ensure_upstream(upstream_spec()).echo_pid
    driver.ensure_router(router_spec())
    vms = {name: add_vm(driver, name, nid, addr) for name, nid, addr in (("ia", "a1", "10.0.1.5"),
                                                                          ("ib", "b1", "10.0.2.5"))}
    yield vms
    assert root_view6() == before  # nothing of ours reached the root namespace


def root_view6() -> list[str]:
    return [*root_view(), subprocess.run(["ip", "-6", "route"], capture_output=True, text=True, check=True).stdout,
            subprocess.run(["ip", "-6", "-br", "addr"], capture_output=True, text=True, check=True).stdout]


def test_the_router_advertises_each_subnet_with_its_flags_and_a_router_lifetime(driver, topo):
    ra_a = router_advertisement(topo["ia"], "eth0")
    assert (ra_a["M"], ra_a["O"]) == (0, 0) and ra_a["router_lifetime"] == router.RA_LIFETIME > 0, ra_a
    assert ra_a["prefixes"] == [{"prefix": PREFIX_A, "L": 1, "A": 1}], ra_a
    ra_b = router_advertisement(topo["ib"], "eth0")
    assert (ra_b["M"], ra_b["O"], ra_b["prefixes"][0]["A"]) == (0, 1, 1) and ra_b["router_lifetime"] > 0, ra_b
    driver.ensure_router(router_spec("dhcpv6-stateful"))  # the RA daemon restarts with the new flags
    ra_b = router_advertisement(topo["ib"], "eth0")
    assert (ra_b["M"], ra_b["prefixes"][0]["A"]) == (1, 0) and ra_b["router_lifetime"] > 0, ra_b
    assert ra_b["prefixes"][0]["prefix"] == PREFIX_B


def test_routed_ipv6_east_west_and_to_the_upstream_without_nat(driver, topo):
    ia, ib = global_address(topo["ia"]), global_address(topo["ib"])
    assert ia.startswith("2001:db8:a1:") and ib.startswith("2001:db8:b1:")
    out = ns_exec(topo["ia"], "busybox", "ping", "-6", "-c", "1", "-W", "5", ib).stdout
    assert "ttl=63" in out, out  # one routed hop
    assert ask(topo["ia"], ib).stdout.strip() == ia  # east-west, never translated
    assert ask(topo["ib"], UPSTREAM6).stdout.strip() == ib  # to the outside: its own address, no NAT
    upstream = driver.names.upstream_ns("e1")
    assert "ttl=63" in ns_exec(upstream, "busybox", "ping", "-6", "-c", "1", "-W", "5", ia).stdout  # echo allowed
    inbound = ask(upstream, ia, timeout=2)  # a new connection from outside is dropped by the forward policy
    assert inbound.returncode != 0 and "timed out" in inbound.stderr, inbound.stderr
    table = router.listed(driver.names.router_ns("f6"), "ip6")
    assert nft.canonical(table) == nft.render6(nft.FilterTable6(driver.names.gateway_port("f6"))), table


def test_dropping_the_ipv6_subnets_stops_the_ra_daemon_and_removes_the_addresses(driver, topo):
    n = driver.names
    daemon = router.ra_daemon(n, "f6", driver.config.dnsmasq)
    assert daemon.pid() is not None
    v4_only = replace(router_spec(), ports=tuple(RouterPortSpec(p.kernel_id, p.network_kernel_id, p.addresses[:1])
                                                 for p in router_spec().ports))
    driver.ensure_router(v4_only)
    assert daemon.pid() is None
    globals_ = [a for a in ipv6_addresses(n.router_ns("f6"), n.router_port("a2")) if a.get("scope") == "global"]
    assert globals_ == []
    driver.remove_routers(["f6"])
    assert not n.router_dir("f6").exists()


@pytest.mark.parametrize("build, message", [
    (lambda: RouterGatewaySpec("e1", "203.0.113.10/24", address6="2001:db9::10/64"), "inside 2001:db8::/32"),
    (lambda: RouterGatewaySpec("e1", "203.0.113.10/24", gateway6=UPSTREAM6), "needs an external IPv6 address"),
    (lambda: RouterPortSpec("a2", "a1", ("10.0.1.1/24",), (RouterAdvertSpec(PREFIX_A, "slaac"),)),
     "prefix of one of its addresses"),
    (lambda: RouterAdvertSpec("2001:db8:a1::/80", "slaac"), "needs a /64"),
    (lambda: RouterAdvertSpec("10.0.1.0/24", "slaac"), "only IPv6"),
    (lambda: UpstreamSpec("e1", "203.0.113.1/24", address6="2001:db8:ff::1/64",
                          routes6=(("2001:db8:a1::/64", EXTERNAL6), ("2001:db8:a1::/48", EXTERNAL6))), "overlap"),
    (lambda: UpstreamSpec("e1", "203.0.113.1/24", routes6=((PREFIX_A, EXTERNAL6),)), "need an upstream IPv6"),
    (lambda: UpstreamSpec("e1", "203.0.113.1/24", address6="fd00::1/64"), "inside 2001:db8::/32"),
])
def test_bad_ipv6_router_input_is_refused(build, message):
    with pytest.raises(HostInputError, match=message):
        build()


_ANY = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.booleans(),
                 st.sampled_from(["2001:db8:ff::10/64", "2001:db8:ff::1", "fd11::1/64", "2001:db8:a1::/64",
                                  "203.0.113.10/24", "2001:db8:ff::/64", "::/0", "2001:db8::1/129", "fe80::1%x/64"]))


@settings(max_examples=300, deadline=None)
@given(address6=_ANY, gateway6=_ANY, prefix=_ANY, mode=st.one_of(_ANY, st.sampled_from(sorted(router.RA_RANGE_MODE))),
       routes=st.one_of(_ANY, st.lists(st.tuples(_ANY, _ANY), max_size=3)))
def test_fuzzed_ipv6_router_specs_raise_only_host_input_errors(address6, gateway6, prefix, mode, routes):
    """Whatever the input, the specs refuse with HostInputError or hold exactly parsed addresses."""
    for build in (lambda: RouterGatewaySpec("e1", "203.0.113.10/24", address6=address6, gateway6=gateway6),
                  lambda: RouterAdvertSpec(prefix, mode),
                  lambda: UpstreamSpec("e1", "203.0.113.1/24", address6=address6, routes6=routes)):
        try:
            spec = build()
        except HostInputError:
            continue
        for value in vars(spec).values():
            assert value is None or isinstance(value, (str, tuple, ipaddress.IPv6Network, ipaddress.IPv6Interface,
                                                       ipaddress.IPv6Address, ipaddress.IPv4Interface,
                                                       ipaddress.IPv4Address))
