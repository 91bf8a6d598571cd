"""Pure tests of naming, specs, validation and rendering: no kernel needed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenants.host import (
    DnsmasqLease,
    HostConfig,
    HostInputError,
    LinuxHostDriver,
    NetworkSpec,
    ReservationSpec,
    SubnetSpec,
)
from tenants.host.config import PREFIX_RE
from tenants.host.dnsmasq import command_for, render_hosts, render_opts
from tenants.host.leases import diff_leases, parse_leases
from tenants.host.naming import DEV_LETTERS, IFNAMSIZ, NS_KINDS, RESERVED_NS_KINDS, Names

prefixes = st.from_regex(PREFIX_RE, fullmatch=True)
kernel_ids = st.from_regex(r"[0-9a-f]{1,8}", fullmatch=True)


def subnet(**kw):
    base = dict(cidr="192.168.1.0/24", gateway="192.168.1.1", dhcp_address="192.168.1.2",
                domain="t1.internal", lease_seconds=3600)
    return SubnetSpec(**{**base, **kw})


@given(prefixes, kernel_ids)
def test_device_names_fit_ifnamsiz_and_namespaces_round_trip(prefix, kid):
    names = Names(HostConfig(prefix, Path("/x")))
    for role in DEV_LETTERS:
        name = names.dev(role, kid)
        assert name.startswith(prefix) and len(name.encode()) <= IFNAMSIZ - 1
    for kind in NS_KINDS:
        assert names.parse_ns(names.ns(kind, kid)) == (kind, kid)


def test_namespace_kinds_cannot_be_confused_across_prefixes():
    # A+k1 == B+k2 with A a proper prefix of B would need k2 to be a suffix of k1.
    for k1 in NS_KINDS:
        for k2 in NS_KINDS:
            assert k1 == k2 or not k1.endswith(k2)
    a = Names(HostConfig("t", Path("/x")))
    assert a.parse_ns("t1seg-1") is None and a.parse_ns("tq-seg-1") is None


@given(prefixes, kernel_ids)
def test_no_two_names_collide_including_the_reserved_kinds(prefix, kid):
    """Routers (qrouter, r/g ports), underlays (ul, VXLAN x) and the fabric get names that no kind in use has."""
    assert set(RESERVED_NS_KINDS) <= set(NS_KINDS)
    assert len(set(DEV_LETTERS.values())) == len(DEV_LETTERS)  # one letter per role
    n = Names(HostConfig(prefix, Path("/x")))
    names = [n.dev(role, kid) for role in DEV_LETTERS] + [n.ns(kind, kid) for kind in NS_KINDS]
    assert len(set(names)) == len(names)
    assert RESERVED_NS_KINDS == ()  # every kind named here is built now
    assert [n.router_ns(kid), n.upstream_ns(kid), n.underlay_ns(kid), n.fabric_ns(kid)] == [
        n.ns(k, kid) for k in ("qrouter", "upstream", "ul", "fabric")]
    assert [n.router_port(kid), n.router_port_peer(kid), n.gateway_port(kid), n.gateway_port_peer(kid),
            n.upstream_dev(kid), n.upstream_port(kid), n.vxlan(kid), n.underlay_dev(kid), n.fabric_port(kid)] == [
        n.dev(role, kid) for role in ("router_port", "router_port_peer", "gateway_port", "gateway_port_peer",
                                      "upstream", "upstream_port", "vxlan", "underlay", "fabric_port")]
    for role in DEV_LETTERS:
        assert n.role(n.dev(role, kid)) == role
    assert n.role("lo") is None and n.role(f"{prefix}z{kid}") is None


def test_dnsmasq_serves_reservations_only():
    spec = NetworkSpec("a1", (subnet(), subnet(cidr="10.0.0.0/24", gateway=None, dhcp_address="10.0.0.2", tag="s1")))
    cmd = command_for(spec, binary="dnsmasq", interface="d", pid_file=Path("/p"), lease_file=Path("/l"),
                      hosts_file=Path("/h"), opts_file=Path("/o"), log_file=Path("/g"))
    assert [a for a in cmd.argv() if a.startswith("--dhcp-range")] == [
        "--dhcp-range=set:s0,192.168.1.0,static,255.255.255.0,3600",
        "--dhcp-range=set:s1,10.0.0.0,static,255.255.255.0,3600",
    ]


@pytest.mark.parametrize("prefix", ["", "1ab", "abcdefg", "Ab", "ab_", "ab--", "a\n"])
def test_bad_prefixes_are_rejected(prefix):
    with pytest.raises(HostInputError):
        HostConfig(prefix, Path("/x"))


@pytest.mark.parametrize("bad", ["web\n1", "web,1", "web\x001", "-web", "web.1", "", "a" * 64, "web 1", "wéb"])
def test_hostname_injection_rejected(bad):
    with pytest.raises(HostInputError):
        ReservationSpec(mac="02:00:00:00:00:01", hostname=bad)


@pytest.mark.parametrize(
    "bad", ["t1.internal\n", "t1,internal", "t1\x00.internal", "t1..internal", "x\nserver=8.8.8.8"]
)
def test_domain_injection_rejected(bad):
    with pytest.raises(HostInputError):
        subnet(domain=bad)


@pytest.mark.parametrize("bad", ["02:00:00:00:00:0g", "02:00:00:00:00:01\n", "01:00:00:00:00:01", "0200.0000.0001"])
def test_bad_macs_rejected(bad):
    with pytest.raises(HostInputError):
        ReservationSpec(mac=bad, hostname="a")


def test_addresses_must_lie_in_subnet_and_cidr_suggests_fix():
    with pytest.raises(HostInputError, match="Did you mean 192.168.1.0/24"):
        subnet(cidr="192.168.1.5/24")
    with pytest.raises(HostInputError, match="not inside"):
        subnet(gateway="10.0.0.1")
    with pytest.raises(HostInputError, match="not inside"):
        NetworkSpec("a1", (subnet(),), (ReservationSpec("02:00:00:00:00:01", "x", "10.0.0.5"),))


def test_rendered_files():
    spec = NetworkSpec("a1", (subnet(), subnet(cidr="10.0.0.0/24", gateway=None, dhcp_address="10.0.0.2",
                                                domain=None, tag="s1")),
                       (ReservationSpec("02:00:00:00:00:01", "fixed", "192.168.1.50"),
                        ReservationSpec("02:00:00:00:00:02", "named")))
    assert render_hosts(spec) == "02:00:00:00:00:01,192.168.1.50,fixed\n02:00:00:00:00:02,named\n"
    assert render_opts(spec).splitlines() == [
        "tag:s0,option:router,192.168.1.1",
        "tag:s0,option:dns-server,192.168.1.2",
        "tag:s0,option:domain-name,t1.internal",
        "tag:s1,option:router",
        "tag:s1,option:dns-server,10.0.0.2",
    ]


def test_mutated_spec_is_revalidated_and_nothing_written(tmp_path):
    """Defence in depth: even a spec mutated after validation cannot reach a file."""
    d = LinuxHostDriver(HostConfig("tpure-", tmp_path / "state"))
    r = ReservationSpec("02:00:00:00:00:01", "ok")
    object.__setattr__(r, "hostname", "evil\ndhcp-range=1.2.3.4")
    spec = NetworkSpec("a1", (subnet(),))
    object.__setattr__(spec, "reservations", (r,))
    with pytest.raises(HostInputError):
        d.ensure_network(spec)
    assert not (tmp_path / "state").exists()
    s = subnet()
    object.__setattr__(s, "domain", "x,server=8.8.8.8")
    spec = NetworkSpec("a1", (subnet(),))
    object.__setattr__(spec, "subnets", (s,))
    with pytest.raises(HostInputError):
        d.plan_network(spec)


def test_lease_parse_and_diff():
    text = "1700000000 02:00:00:00:00:01 192.168.1.5 web 01:02:00:00:00:00:01\n0 02:00:00:00:00:02 192.168.1.6 * *\n"
    a = parse_leases(text)
    assert a[0] == DnsmasqLease(1700000000, "02:00:00:00:00:01", a[0].ip, "web", "01:02:00:00:00:00:01")
    assert a[1].hostname is None and a[1].client_id is None
    b = [dataclasses.replace(a[0], expiry=1700000100)]
    kinds = sorted((e.kind, str(e.ip)) for e in diff_leases("n", a, b))
    assert kinds == [("del", "192.168.1.6"), ("renew", "192.168.1.5")]


def test_instance_lease_tells_two_leases_within_one_second_apart():
    from tenants.host.dhcp_client import parse_lease

    first = parse_lease("ip=192.168.1.5\nmask=24\nobtained=1700000000.100000000\n")
    renewed = parse_lease("ip=192.168.1.5\nmask=24\nobtained=1700000000.900000000\n")
    assert first.obtained < renewed.obtained and first.ip == renewed.ip
    assert parse_lease("ip=192.168.1.5\nmask=24\nobtained=1e9\n").obtained is None


def test_lease_parse_reads_dhcpv6_lines_after_the_server_duid():
    """dnsmasq's v6 lines are ``expiry iaid addr name client-duid`` after ``duid SERVER``; the MAC comes from a
    DUID-LLT (type 1) or DUID-LL (type 3), and a DUID without one (DUID-EN, type 2) cannot name an instance."""
    text = ("1700000000 02:00:00:00:00:01 192.168.1.5 web *\n"
            "duid 00:01:00:01:2c:00:00:01:02:aa:bb:cc:dd:ee\n"
            "1700000300 3215712 2001:db8:6::10 vm6 00:01:00:01:2c:11:22:33:02:00:00:00:06:0a\n"
            "1700000300 7 2001:db8:6::11 * 00:03:00:01:02:00:00:00:06:0b\n"
            "1700000300 8 2001:db8:6::12 * 00:02:00:00:ab:11:01:02\n")
    v4, a, b = parse_leases(text)
    assert (v4.mac, str(v4.ip), v4.iaid) == ("02:00:00:00:00:01", "192.168.1.5", None)
    assert a == DnsmasqLease(1700000300, "02:00:00:00:06:0a", a.ip, "vm6",
                             "00:01:00:01:2c:11:22:33:02:00:00:00:06:0a", 3215712)
    assert str(a.ip) == "2001:db8:6::10"
    assert (b.mac, str(b.ip), b.hostname, b.iaid) == ("02:00:00:00:06:0b", "2001:db8:6::11", None, 7)
