"""IPv6 on isolated networks against the real kernel and dnsmasq: the three Neutron modes, dual stack, overlap.

Every test reads what the instance itself sees: the RA's flags off the wire (a raw ICMPv6 socket in the instance
namespace), its addresses and routes from the kernel.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import subprocess

import pytest
from host_helpers import ipv6_addresses, ns_exec, router_advertisement, sysctl, wait_for

from tenants.host import InstanceSpec, LinuxHostDriver, NetworkSpec, ReservationSpec, SubnetSpec, netns
from tenants.host.ra_probe import address_origin

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)

PREFIX = "2001:db8:61::/64"


def v4_subnet() -> SubnetSpec:
    return SubnetSpec(cidr="192.168.1.0/24", gateway="192.168.1.1", dhcp_address="192.168.1.2", tag="s1")


def v6_subnet(mode: str, *, cidr: str = PREFIX, ra: bool = True) -> SubnetSpec:
    net = ipaddress.ip_network(cidr)
    return SubnetSpec(cidr=cidr, gateway=net[1], dhcp_address=net[2], tag="s6", lease_seconds=600,
                      ipv6_ra_mode=mode if ra else None, ipv6_address_mode=mode)


def eui64(prefix: str, mac: str) -> ipaddress.IPv6Address:
    """RFC 4291 modified EUI-64, written out independently of the product's."""
    b = bytearray.fromhex(mac.replace(":", ""))
    b[0] ^= 2
    iid = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    return ipaddress.ip_network(prefix)[int.from_bytes(iid, "big")]


def global_addresses(ns: str, dev: str) -> list[dict]:
    return [a for a in ipv6_addresses(ns, dev) if a["scope"] == "global"]


@pytest.fixture
def fast_driver(driver) -> LinuxHostDriver:
    """The test driver with HostConfig.fast_ipv6 (no RS delay, no DAD in instances)."""
    return type(driver)(dataclasses.replace(driver.config, fast_ipv6=True))


def settled(ns: str, dev: str, expected: set[str]):
    """Wait until the device's global addresses are exactly ``expected`` and none is tentative."""
    def done():
        addrs = global_addresses(ns, dev)
        ok = {a["local"] for a in addrs} == expected and not any(a.get("tentative") for a in addrs)
        return addrs if ok else None
    return wait_for(done, timeout=30, step=0.05)


@pytest.mark.parametrize("mode,flags", [("slaac", (0, 0)), ("dhcpv6-stateless", (0, 1))])
def test_slaac_modes_dual_stack(fast_driver, mode, flags):
    """SLAAC and stateless: the instance holds its v4 lease and exactly the predicted EUI-64 address, the RA has
    the mode's M/O flags, A=1, and router lifetime 0 (no default route through the DHCP namespace)."""
    d, mac = fast_driver, "02:00:00:00:61:01"
    d.ensure_network(NetworkSpec("c1", (v4_subnet(), v6_subnet(mode)), (ReservationSpec(mac, "vm", "192.168.1.10"),)))
    inst = d.ensure_instance(InstanceSpec("d1", "c1", mac, "vm", dhcpv6=mode != "slaac"))
    assert inst.lease is not None and str(inst.lease.ip) == "192.168.1.10"
    assert (inst.dhcpcd_pid is not None) == (mode != "slaac")  # SLAAC needs no client
    dev = d.names.inst_dev("d1")
    addrs = settled(inst.ns, dev, {str(eui64(PREFIX, mac))})
    assert addrs, global_addresses(inst.ns, dev)
    assert all("mngtmpaddr" in a or a.get("dynamic") for a in addrs)  # autoconfigured (kernel or dhcpcd)
    ra = router_advertisement(inst.ns, dev)
    assert (ra["M"], ra["O"]) == flags
    assert ra["router_lifetime"] == 0
    assert ra["prefixes"] == [{"prefix": PREFIX, "L": 1, "A": 1}]
    seen = d.instance_router_advert("d1")  # the inspector's probe agrees with the independent one above
    assert (seen.managed, seen.other, seen.router_lifetime) == (*map(bool, flags), 0)
    assert [(p.prefix, p.on_link, p.autonomous) for p in seen.prefixes] == [(PREFIX, True, True)]
    assert {address_origin(a["local"], a["prefixlen"]) for a in ipv6_addresses(inst.ns, dev)} == {"SLAAC",
                                                                                                    "link-local"}
    assert "default" not in ns_exec(inst.ns, "ip", "-6", "route").stdout


def test_stateful_mode_advertises_managed_and_reserves_by_mac(fast_driver):
    """Stateful: RA says M=1, A=0 (no SLAAC address appears), and dnsmasq reserves the IPAM address by MAC."""
    d, mac = fast_driver, "02:00:00:00:61:02"
    spec = NetworkSpec("c2", (v4_subnet(), v6_subnet("dhcpv6-stateful")),
                       (ReservationSpec(mac, "vm", "192.168.1.11", ip6="2001:db8:61::10"),))
    d.ensure_network(spec)
    assert d.names.hosts("c2").read_text() == f"{mac},192.168.1.11,[2001:db8:61::10],vm\n"
    inst = d.ensure_instance(InstanceSpec("d2", "c2", mac, "vm"))
    ra = router_advertisement(inst.ns, d.names.inst_dev("d2"))
    assert (ra["M"], ra["O"], ra["router_lifetime"]) == (1, 1, 0)
    assert ra["prefixes"] == [{"prefix": PREFIX, "L": 1, "A": 0}]
    assert global_addresses(inst.ns, d.names.inst_dev("d2")) == []
    seen = d.instance_router_advert("d2")
    assert (seen.managed, seen.other, [(p.prefix, p.autonomous) for p in seen.prefixes]) == (True, True,
                                                                                           [(PREFIX, False)])


def test_infrastructure_namespaces_do_not_autoconfigure(fast_driver):
    """qdhcp: accept_ra off and its v6 address nodad (never tentative); segment: IPv6 off on bridge and ports."""
    d, mac = fast_driver, "02:00:00:00:61:03"
    d.ensure_network(NetworkSpec("c3", (v6_subnet("slaac"),)))
    d.ensure_instance(InstanceSpec("d3", "c3", mac, "vm"))
    dhcp, dev = d.names.dhcp_ns("c3"), d.names.dhcp_dev("c3")
    assert sysctl(dhcp, f"net.ipv6.conf.{dev}.accept_ra") == "0"
    [served] = global_addresses(dhcp, dev)
    assert served["local"] == "2001:db8:61::2" and served.get("nodad") and not served.get("tentative")
    seg = d.names.seg_ns("c3")
    for port in (d.names.bridge("c3"), d.names.dhcp_port("c3"), d.names.inst_port("d3")):
        assert sysctl(seg, f"net.ipv6.conf.{port}.disable_ipv6") == "1"
        assert ipv6_addresses(seg, port) == []


def test_two_tenants_same_v6_prefix_isolated(fast_driver):
    """Two networks on the same prefix: each instance has its own EUI-64 address and reaches its own dnsmasq."""
    d = fast_driver
    macs = {"e1": "02:00:00:00:62:01", "e2": "02:00:00:00:62:02"}
    for nid, iid in (("e1", "f1"), ("e2", "f2")):
        d.ensure_network(NetworkSpec(nid, (v6_subnet("slaac"),)))
        inst = d.ensure_instance(InstanceSpec(iid, nid, macs[nid], "vm"))
        assert settled(inst.ns, d.names.inst_dev(iid), {str(eui64(PREFIX, macs[nid]))})
    for nid, iid in (("e1", "f1"), ("e2", "f2")):
        ns = d.names.inst_ns(iid)
        ns_exec(ns, "busybox", "ping6", "-c", "1", "-W", "5", "2001:db8:61::2")
        neigh = ns_exec(ns, "ip", "-6", "neigh", "show", "2001:db8:61::2").stdout
        dhcp_mac = ns_exec(d.names.dhcp_ns(nid), "cat", f"/sys/class/net/{d.names.dhcp_dev(nid)}/address").stdout
        assert dhcp_mac.strip() in neigh
        other_addr = str(eui64(PREFIX, macs["e2" if nid == "e1" else "e1"]))
        assert ns_exec(ns, "busybox", "ping6", "-c", "1", "-W", "1", other_addr, check=False).returncode != 0


def test_transcript_replayed_with_bash_gives_the_same_v6_state(host_config):
    """The v6 network's equivalent commands, replayed with bash on a fresh prefix, build the same state."""
    mac = "02:00:00:00:63:01"
    spec = NetworkSpec("c4", (v4_subnet(), v6_subnet("dhcpv6-stateless")),
                       (ReservationSpec(mac, "rp", "192.168.1.12"),))
    ispec = InstanceSpec("d4", "c4", mac, "rp", dhcpv6=True)
    fresh = LinuxHostDriver(dataclasses.replace(host_config(), fast_ipv6=True))
    script = "\n".join(["set -e", f"mkdir -p -m 755 {fresh.config.state_dir}",
                        *fresh.transcript_network(spec), *fresh.transcript_instance(ispec)])
    r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ns, dev = fresh.names.inst_ns("d4"), fresh.names.inst_dev("d4")
    assert settled(ns, dev, {str(eui64(PREFIX, mac))})
    assert sysctl(fresh.names.dhcp_ns("c4"), f"net.ipv6.conf.{fresh.names.dhcp_dev('c4')}.accept_ra") == "0"
    assert sysctl(fresh.names.seg_ns("c4"), "net.ipv6.conf.default.disable_ipv6") == "1"
    assert router_advertisement(ns, dev)["O"] == 1
    assert fresh.dhcpcd_pid("d4") is not None  # the replayed dhcpcd line runs the same supervised client
    assert wait_for(lambda: fresh.instance_lease6("d4"), timeout=15).reason == "INFORM6"
    assert fresh.instance_running(ispec)  # nothing for the driver to restart
    pid = wait_for(lambda: fresh.dnsmasq_pid("c4"))
    fresh.ensure_network(spec)  # the replayed host is what the driver builds: nothing to restart
    assert fresh.dnsmasq_pid("c4") == pid
    fresh.remove_instance("d4")
    fresh.remove_network("c4")
    assert [n for n in netns.list_names() if n.startswith(fresh.config.prefix)] == []


def processes_in(ns: str) -> list[str]:
    """The program of every process in namespace ``ns`` (dhcpcd's privilege-separation helpers included)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    out = []
    for pid in pids:
        try:
            out.append(open(f"/proc/{pid}/cmdline").read().split("\0")[0])
        except OSError:
            pass
    return out


def test_stateful_dhcpv6_address_follows_the_reservation(fast_driver):
    """The supervised dhcpcd gets exactly the address reserved for its MAC (as /128, next to its v4 lease); its
    hook records it; dnsmasq's lease file holds a v6 line the parser maps back to the MAC; a reservation change
    and a renew move the address."""
    d, mac, nid, iid = fast_driver, "02:00:00:00:64:01", "c5", "d5"
    spec = NetworkSpec(nid, (v4_subnet(), v6_subnet("dhcpv6-stateful")),
                       (ReservationSpec(mac, "vm", "192.168.1.13", ip6="2001:db8:61::10"),))
    d.ensure_network(spec)
    inst = d.ensure_instance(InstanceSpec(iid, nid, mac, "vm", dhcpv6=True))
    dev, log = d.names.inst_dev(iid), d.names.dhcpcd_run(iid) / "dhcpcd.log"
    assert inst.dhcpcd_pid is not None and inst.udhcpc_pid is not None
    assert settled(inst.ns, dev, {"2001:db8:61::10"}), log.read_text()
    [held] = global_addresses(inst.ns, dev)
    assert held["prefixlen"] == 128  # dhcpcd adds DHCPv6 addresses as /128; the RA gave the on-link route
    assert address_origin(held["local"], held["prefixlen"]) == "DHCPv6"
    recorded = wait_for(lambda: d.instance_lease6(iid), timeout=10)
    assert recorded.reason in ("BOUND6", "REBOOT6") and [str(a) for a in recorded.addresses] == ["2001:db8:61::10"]
    v6_leases = lambda: [x for x in d.network_leases(nid) if x.ip.version == 6]  # noqa: E731
    lease = wait_for(v6_leases, timeout=10)
    assert [(x.mac, str(x.ip)) for x in lease] == [(mac, "2001:db8:61::10")]
    assert str(inst.lease.ip) == "192.168.1.13"
    d.ensure_network(dataclasses.replace(spec, reservations=(
        ReservationSpec(mac, "vm", "192.168.1.13", ip6="2001:db8:61::20"),)))
    d.renew_instance(iid)
    assert settled(inst.ns, dev, {"2001:db8:61::20"}), (global_addresses(inst.ns, dev), log.read_text())
    moved = wait_for(lambda: [x for x in v6_leases() if str(x.ip) == "2001:db8:61::20"], timeout=10)
    assert [x.mac for x in moved] == [mac]
    d.remove_instance(iid)
    assert not netns.exists(inst.ns) and not d.names.inst_dir(iid).exists()


def test_stateless_dhcpcd_asks_only_for_options(fast_driver):
    """Stateless: dhcpcd runs (O=1) but takes no DHCPv6 address: the instance holds its EUI-64 address only."""
    d, mac = fast_driver, "02:00:00:00:64:02"
    d.ensure_network(NetworkSpec("c6", (v6_subnet("dhcpv6-stateless"),)))
    inst = d.ensure_instance(InstanceSpec("d6", "c6", mac, "vm", dhcpv4=False, dhcpv6=True))
    dev = d.names.inst_dev("d6")
    assert settled(inst.ns, dev, {str(eui64(PREFIX, mac))})
    recorded = wait_for(lambda: d.instance_lease6("d6"), timeout=15)
    assert recorded.reason == "INFORM6" and recorded.addresses == ()
    assert [x for x in d.network_leases("c6") if x.ip.version == 6] == []


def test_v6_only_instance_runs_dhcpcd_and_no_udhcpc(fast_driver):
    """An IPv6-only DHCPv6 instance runs dhcpcd and no udhcpc; ensure is idempotent (same pid); a killed dhcpcd is
    seen and restarted; a SLAAC-only instance runs no client at all; removal leaves nothing behind."""
    d, mac = fast_driver, "02:00:00:00:64:03"
    spec = NetworkSpec("c7", (v6_subnet("dhcpv6-stateful"),), (ReservationSpec(mac, "vm", "2001:db8:61::30"),))
    d.ensure_network(spec)
    ispec = InstanceSpec("d7", "c7", mac, "vm", dhcpv4=False, dhcpv6=True)
    inst = d.ensure_instance(ispec)
    assert inst.udhcpc_pid is None and inst.lease is None and inst.dhcpcd_pid is not None
    assert "udhcpc" not in " ".join(processes_in(inst.ns))
    assert settled(inst.ns, d.names.inst_dev("d7"), {"2001:db8:61::30"})
    assert d.instance_running(ispec)
    assert d.ensure_instance(ispec).dhcpcd_pid == inst.dhcpcd_pid
    os.kill(inst.dhcpcd_pid, 9)
    wait_for(lambda: d.dhcpcd_pid("d7") is None)
    assert not d.instance_running(ispec)
    assert d.ensure_instance(ispec).dhcpcd_pid not in (None, inst.dhcpcd_pid)
    assert d.instance_running(ispec)
    slaac = InstanceSpec("d8", "c7", "02:00:00:00:64:04", "vm2", dhcpv4=False)
    d.ensure_network(NetworkSpec("c8", (v6_subnet("slaac"),)))
    bare = d.ensure_instance(dataclasses.replace(slaac, network_kernel_id="c8"))
    assert (bare.udhcpc_pid, bare.dhcpcd_pid) == (None, None) and processes_in(bare.ns) == []
    assert d.scan_host().instances["d7"].dhcpcd_pid == d.dhcpcd_pid("d7")
    d.remove_instances(["d7", "d8"])
    assert [n for n in netns.list_names() if n.startswith(d.config.prefix + "inst")] == []


def test_dual_stack_instance_stops_the_client_its_spec_drops(fast_driver):
    """Dual stack runs both clients; when the spec drops DHCPv6 (the subnet became SLAAC) ensure stops dhcpcd."""
    d, mac = fast_driver, "02:00:00:00:64:05"
    d.ensure_network(NetworkSpec("c9", (v4_subnet(), v6_subnet("dhcpv6-stateless"))))
    both = InstanceSpec("d9", "c9", mac, "vm", dhcpv6=True)
    inst = d.ensure_instance(both)
    assert inst.udhcpc_pid is not None and inst.dhcpcd_pid is not None
    v4_only = dataclasses.replace(both, dhcpv6=False)
    assert not d.instance_running(v4_only)
    again = d.ensure_instance(v4_only)
    assert again.dhcpcd_pid is None and again.udhcpc_pid == inst.udhcpc_pid
    assert d.instance_running(v4_only) and "dhcpcd" not in " ".join(processes_in(inst.ns))
