"""Routers and the simulated upstream on the real kernel: forwarding, SNAT, floating IPs, hairpin, conntrack.

Topology (every name under the test's own prefix, removed even on failure)::

    vm ia 10.0.1.5, ia2 10.0.1.6 ── net A (10.0.1.0/24) ──┐
                                                         router R: qr 10.0.1.1, 10.0.2.1; qg 203.0.113.10
    vm ib 10.0.2.5 ─────────────── net B (10.0.2.0/24) ──┘    FIP 203.0.113.20 -> 10.0.1.5
                                   net E (203.0.113.0/24) ── upstream 203.0.113.1 (echo service, no routes)

The instances are plain namespaces with static addresses (the DHCP path is tested elsewhere); each runs the same
echo service as the upstream, so every check reads "who does the other side think I am".
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from host_helpers import ns_exec, wait_for

from tenants.host import (
    UPSTREAM_ECHO_PORT,
    FloatingIPSpec,
    HostError,
    HostInputError,
    NetworkSpec,
    RouterGatewaySpec,
    RouterPortSpec,
    RouterSpec,
    SubnetSpec,
    UpstreamSpec,
    netns,
    nft,
)
from tenants.host.kinds.upstream import SCRIPT

FIP = "203.0.113.20"
EXTERNAL = "203.0.113.10"
UPSTREAM = "203.0.113.1"


def network(kid: str, cidr: str) -> NetworkSpec:
    """A network without DHCP: only its segment (instances here have static addresses)."""
    base = cidr.rsplit(".", 1)[0]
    return NetworkSpec(kid, (SubnetSpec(cidr, gateway=f"{base}.1", dhcp_address=f"{base}.2", enable_dhcp=False),))


def router_spec(rid: str = "f1", fips: tuple[FloatingIPSpec, ...] = (FloatingIPSpec(FIP, "10.0.1.5"),),
                external: str = EXTERNAL, nets: tuple[str, str] = ("a1", "b1"), ports: tuple[str, str] = ("a2", "b2"),
                ) -> RouterSpec:
    return RouterSpec(rid, (RouterPortSpec(ports[0], nets[0], ("10.0.1.1/24",)),
                            RouterPortSpec(ports[1], nets[1], ("10.0.2.1/24",))),
                      RouterGatewaySpec("e1", f"{external}/24", UPSTREAM), floating_ips=fips)


@dataclass
class Topology:
    driver: object
    spec: RouterSpec
    vms: dict[str, str]  # name -> namespace

    def ask(self, vm_or_ns: str, address: str) -> str:
        """Connect from a VM (or namespace) to ``address``'s echo service: the address it saw us as."""
        ns = self.vms.get(vm_or_ns, vm_or_ns)
        code = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); "
                "print(s.recv(64).decode().strip())")
        return ns_exec(ns, sys.executable, "-c", code, address, str(UPSTREAM_ECHO_PORT)).stdout.strip()


def add_vm(driver, name: str, net_id: str, address: str) -> str:
    """A namespace with a static address on the network's bridge, its default route via .1, an echo service."""
    n, p = driver.names, driver.config.prefix
    ns, port = f"{p}vm-{name}", f"{p}t{name}"
    gw = address.rsplit(".", 1)[0] + ".1"
    netns.create(ns)
    for argv in (["ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port,
                  "netns", n.seg_ns(net_id)],
                 ["ip", "-n", n.seg_ns(net_id), "link", "set", port, "master", n.bridge(net_id), "up"],
                 ["ip", "-n", ns, "link", "set", "lo", "up"], ["ip", "-n", ns, "link", "set", "eth0", "up"],
                 ["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0"],
                 ["ip", "-n", ns, "route", "add", "default", "via", gw]):
        subprocess.run(argv, check=True, capture_output=True, text=True)
    # The pid file in the state dir names this process for the fixtures' cleanup.
    ns_exec(ns, sys.executable, str(SCRIPT), str(UPSTREAM_ECHO_PORT), str(driver.config.state_dir / f"vm-{name}.pid"))
    return ns


def build(driver, spec: RouterSpec | None = None) -> Topology:
    driver.config.state_dir.mkdir(parents=True, exist_ok=True)
    for nid, cidr in (("a1", "10.0.1.0/24"), ("b1", "10.0.2.0/24"), ("e1", "203.0.113.0/24")):
        driver.ensure_network(network(nid, cidr))
    assert driver.ensure_upstream(UpstreamSpec("e1", f"{UPSTREAM}/24")).echo_pid
    spec = spec or router_spec()
    driver.ensure_router(spec)
    vms = {name: add_vm(driver, name, nid, addr)
           for name, nid, addr in (("ia", "a1", "10.0.1.5"), ("ia2", "a1", "10.0.1.6"), ("ib", "b1", "10.0.2.5"))}
    return Topology(driver, spec, vms)


def root_view() -> list[str]:
    return [subprocess.run(["ip", *argv], capture_output=True, text=True, check=True).stdout
            for argv in (["-br", "link"], ["-br", "addr"], ["route"])]


def flows_with(lines: list[str], address: str) -> list[str]:
    return [line for line in lines if f"={address} " in line]


def test_east_west_is_one_routed_hop_and_never_translated(driver):
    t = build(driver)
    out = ns_exec(t.vms["ia"], "busybox", "ping", "-c", "1", "-W", "5", "10.0.2.5").stdout
    assert "ttl=63" in out, out
    assert t.ask("ia", "10.0.2.5") == "10.0.1.5"
    assert t.ask("ib", "10.0.1.5") == "10.0.2.5"  # the FIP's own instance too: no SNAT between tenant subnets


def test_snat_floating_ip_and_hairpin_as_the_other_side_sees_them(driver):
    t = build(driver)
    upstream = driver.names.upstream_ns("e1")
    assert t.ask("ib", UPSTREAM) == EXTERNAL  # SNAT to the router's external address
    assert t.ask("ia", UPSTREAM) == FIP  # the floating IP is the instance's source
    assert t.ask("ia2", UPSTREAM) == EXTERNAL  # its neighbour without one: SNAT
    assert t.ask(upstream, FIP) == UPSTREAM  # reachable from outside, the instance sees the real caller
    assert t.ask("ia2", FIP) == EXTERNAL  # hairpin: SNATed so the reply returns through the router
    direct = ns_exec(upstream, sys.executable, "-c", "import socket; socket.create_connection(('10.0.1.5', 7007), 3)",
                     check=False)
    assert direct.returncode != 0 and "unreachable" in direct.stderr, direct.stderr
    ruleset = driver.router_ruleset("f1")
    post = ruleset.split("chain postrouting", 1)[1]
    assert "counter packets 0 " not in post, ruleset  # every SNAT rule translated something
    assert nft.canonical(ruleset) == nft.render(nft_table(driver, t.spec))


def nft_table(driver, spec):
    from tenants.host.kinds import router
    return router.table(driver.names, spec)


def test_two_routers_same_tenant_cidr_are_told_apart_by_upstream(driver):
    driver.config.state_dir.mkdir(parents=True, exist_ok=True)
    for nid, cidr in (("a1", "10.0.1.0/24"), ("b1", "10.0.2.0/24"), ("c1", "10.0.1.0/24"), ("d1", "10.0.2.0/24"),
                      ("e1", "203.0.113.0/24")):
        driver.ensure_network(network(nid, cidr))
    driver.ensure_upstream(UpstreamSpec("e1", f"{UPSTREAM}/24"))
    driver.ensure_router(router_spec("f1", fips=()))
    driver.ensure_router(router_spec("f2", fips=(), external="203.0.113.11", nets=("c1", "d1"), ports=("c2", "d2")))
    one, two = add_vm(driver, "x1", "a1", "10.0.1.5"), add_vm(driver, "x2", "c1", "10.0.1.5")
    t = Topology(driver, router_spec(), {})
    assert (t.ask(one, UPSTREAM), t.ask(two, UPSTREAM)) == (EXTERNAL, "203.0.113.11")
    ct1, ct2 = driver.router_conntrack("f1"), driver.router_conntrack("f2")
    assert flows_with(ct1, EXTERNAL) and not flows_with(ct1, "203.0.113.11"), ct1
    assert flows_with(ct2, "203.0.113.11") and not flows_with(ct2, EXTERNAL), ct2


def test_rules_flushed_behind_our_back_are_restored_and_a_matching_table_is_kept(driver):
    t = build(driver)
    ns = driver.names.router_ns("f1")
    assert driver.ensure_router(t.spec).ruleset_changed is False
    subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "chain", "ip", "netdash", "postrouting"], check=True)
    assert driver.ensure_router(t.spec).ruleset_changed is True
    assert t.ask("ib", UPSTREAM) == EXTERNAL
    before = driver.router_ruleset("f1")
    assert driver.ensure_router(t.spec).ruleset_changed is False
    assert driver.router_ruleset("f1") == before  # not rewritten: counters kept
    subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"], check=True)
    assert driver.ensure_router(t.spec).ruleset_changed is True
    assert t.ask("ia", UPSTREAM) == FIP


def test_a_moved_floating_ip_clears_its_conntrack_and_follows(driver):
    t = build(driver)
    assert t.ask("ia", UPSTREAM) == FIP
    assert flows_with(driver.router_conntrack("f1"), FIP)
    moved = replace(t.spec, floating_ips=(FloatingIPSpec(FIP, "10.0.1.6"),))
    result = driver.ensure_router(moved)
    assert result.conntrack_cleared == (FIP,) and result.ruleset_changed
    assert not flows_with(driver.router_conntrack("f1"), FIP)
    assert (t.ask("ia2", UPSTREAM), t.ask("ia", UPSTREAM)) == (FIP, EXTERNAL)
    assert t.ask("ia2", UPSTREAM) == FIP
    subprocess.run(["ip", "netns", "exec", driver.names.router_ns("f1"), "nft", "flush", "ruleset"], check=True)
    gone = driver.ensure_router(replace(t.spec, floating_ips=()))  # the live table cannot tell; the /32 can
    assert gone.conntrack_cleared == (FIP,)
    assert not flows_with(driver.router_conntrack("f1"), FIP)
    addrs = ns_exec(driver.names.router_ns("f1"), "ip", "-br", "addr", "show", driver.names.gateway_port("f1")).stdout
    assert FIP not in addrs and EXTERNAL in addrs
    assert t.ask("ia2", UPSTREAM) == EXTERNAL


def test_ports_the_spec_drops_are_removed(driver):
    t = build(driver)
    n = driver.names
    driver.ensure_router(replace(t.spec, ports=t.spec.ports[:1], floating_ips=()))
    links = ns_exec(n.router_ns("f1"), "ip", "-br", "link").stdout
    assert n.router_port("b2") not in links and n.router_port("a2") in links
    assert wait_for(lambda: n.router_port_peer("b2") not in ns_exec(n.seg_ns("b1"), "ip", "-br", "link").stdout,
                    timeout=30)
    assert ns_exec(t.vms["ib"], "busybox", "ping", "-c", "1", "-W", "1", "10.0.1.5", check=False).returncode != 0


def test_remove_routers_leaves_nothing_and_the_root_namespace_is_untouched(driver):
    root = root_view()
    t = build(driver)
    n = driver.names
    assert t.ask("ib", UPSTREAM) == EXTERNAL
    scan = driver.scan_host()
    assert set(scan.routers) == {"f1"} and scan.upstreams["e1"].echo_pid and not scan.reserved
    driver.remove_orphans(["a1", "b1", "e1"], [])  # wanted_routers=None: routers are left alone
    assert netns.exists(n.router_ns("f1"))
    driver.remove_routers(["f1"])
    driver.remove_routers(["f1"])  # already gone is fine
    assert not netns.exists(n.router_ns("f1")) and not driver.scan_host().routers

    def peers_left() -> list[str]:
        return [line for nid in ("a1", "b1", "e1") for line in ns_exec(n.seg_ns(nid), "ip", "-br", "link").stdout
                .splitlines() if n.role(line.split("@")[0].split()[0]) in ("router_port_peer", "gateway_port_peer")]

    assert wait_for(lambda: not peers_left(), timeout=30), peers_left()
    driver.ensure_router(t.spec)
    driver.remove_orphans(["a1", "b1", "e1"], [], wanted_routers=[])
    assert not netns.exists(n.router_ns("f1"))
    driver.remove_networks(["a1", "b1", "e1"])
    assert not netns.exists(n.upstream_ns("e1")) and not (n.upstream_dir("e1")).exists()
    assert root_view() == root


def test_router_transcript_replayed_with_bash_gives_the_same_ruleset(driver, host_config):
    from tenants.host import LinuxHostDriver
    fresh = LinuxHostDriver(host_config())
    t = build(fresh, router_spec())
    fresh.remove_routers(["f1"])
    script = "\n".join(["set -e", *fresh.transcript_router(t.spec)])
    r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert fresh.ensure_router(t.spec).ruleset_changed is False
    assert t.ask("ia", UPSTREAM) == FIP and t.ask("ib", UPSTREAM) == EXTERNAL


def test_router_needs_its_networks(driver):
    with pytest.raises(HostError, match="not realised"):
        driver.ensure_router(router_spec())


@pytest.mark.parametrize("make, message", [
    (lambda: UpstreamSpec("e1", "192.0.2.1/24"), "TEST-NET"),
    (lambda: UpstreamSpec("e1", "203.0.113.0/24"), "network or broadcast"),
    (lambda: RouterPortSpec("a2", "a1", ("10.0.1.1/24\n",)), "not an IPv4 address"),
    (lambda: RouterPortSpec("a2", "a1", ()), "at least one"),
    (lambda: RouterGatewaySpec("e1", "203.0.113.10/24", "198.51.100.1"), "not inside"),
    (lambda: router_spec(fips=(FloatingIPSpec("198.51.100.5", "10.0.1.5"),)), "not inside"),
    (lambda: router_spec(fips=(FloatingIPSpec(EXTERNAL, "10.0.1.5"),)), "router's or the upstream's"),
    (lambda: router_spec(fips=(FloatingIPSpec(FIP, "10.9.9.9"),)), "not in a subnet attached"),
    (lambda: router_spec(fips=(FloatingIPSpec(FIP, "10.0.1.5"), FloatingIPSpec("203.0.113.21", "10.0.1.5"))),
     "fixed ip appears twice"),
    (lambda: RouterSpec("f1", (RouterPortSpec("a2", "a1", ("10.0.1.1/24",)),), None,
                        floating_ips=(FloatingIPSpec(FIP, "10.0.1.5"),)), "need an external gateway"),
    (lambda: RouterSpec("f1", (RouterPortSpec("a2", "a1", ("10.0.1.1/24",)),
                               RouterPortSpec("b2", "b1", ("10.0.1.129/25",))), None), "overlap"),
    (lambda: RouterSpec("f1", (RouterPortSpec("a2", "e1", ("10.0.1.1/24",)),),
                        RouterGatewaySpec("e1", "203.0.113.10/24")), "both external"),
    (lambda: RouterSpec("f1", (), None, snat="yes"), "True or False"),
])
def test_router_specs_refuse_what_must_not_reach_a_rule(make, message):
    with pytest.raises(HostInputError, match=message):
        make()


def test_rendered_table_translates_only_what_the_spec_names():
    from tenants.host import HostConfig, Names
    from tenants.host.kinds import router
    n = Names(HostConfig("t-", Path("/x")))
    text = nft.render(router.table(n, router_spec()))
    assert nft.floating_ips(text) == {FIP: "10.0.1.5"}
    post = text.split("chain postrouting", 1)[1]
    assert post.count("snat to") == 4 and 'iifname != "t-gf1" ct status dnat' in post
    assert "snat to 203.0.113.10" not in nft.render(router.table(n, replace(router_spec(fips=()), snat=False)))


def test_the_upstream_converges_after_its_echo_or_its_state_went(driver):
    import shutil
    import signal

    from tenants.host import process
    t = build(driver)
    spec, n = UpstreamSpec("e1", f"{UPSTREAM}/24"), driver.names
    first = driver.ensure_upstream(spec).echo_pid
    assert driver.ensure_upstream(spec).echo_pid == first  # kept
    process.kill_and_wait([first], signal.SIGKILL)
    second = driver.ensure_upstream(spec).echo_pid
    assert second and second != first and t.ask("ib", UPSTREAM) == EXTERNAL
    shutil.rmtree(n.upstream_dir("e1"))  # the pid file goes; the echo keeps the port
    third = driver.ensure_upstream(spec).echo_pid
    assert third and third != second and process.cmdline(second) is None
    routes = ns_exec(n.upstream_ns("e1"), "ip", "route").stdout
    assert routes.split() == ["203.0.113.0/24", "dev", n.upstream_dev("e1"), "proto", "kernel", "scope", "link",
                              "src", UPSTREAM], routes  # no default route: the outside world ends here
