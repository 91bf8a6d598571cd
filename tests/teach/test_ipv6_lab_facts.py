"""The three-modes IPv6 lab's findings on fixed input (no kernel): each follows from the RA flags the instance
received and what it holds, and one the observation contradicts shows as not holding (a ``no_…`` key)."""

from __future__ import annotations

from teach.ipv6_lab import Observation, facts

MAC = "52:54:00:12:34:56"
LL = "fe80::5054:ff:fe12:3456"


def _ra(m: int, o: int, prefix: str, a: int) -> dict:
    return {"M": m, "O": o, "prefixes": [{"prefix": prefix, "L": 1, "A": a}]}


def _addr(address: str, prefixlen: int, origin: str) -> dict:
    return {"address": address, "prefixlen": prefixlen, "origin": origin}


def _observations() -> list[Observation]:
    dhcpcd = {"program": "dhcpcd", "pid": 42}
    return [
        Observation("slaac", "vm-s", MAC, "2001:db8:a1:0:5054:ff:fe12:3456", _ra(0, 0, "2001:db8:a1::/64", 1),
                    [_addr(LL, 64, "link-local"), _addr("2001:db8:a1:0:5054:ff:fe12:3456", 64, "SLAAC")], None, []),
        Observation("dhcpv6-stateless", "vm-l", MAC, "2001:db8:a2:0:5054:ff:fe12:3456",
                    _ra(0, 1, "2001:db8:a2::/64", 1),
                    [_addr(LL, 64, "link-local"), _addr("2001:db8:a2:0:5054:ff:fe12:3456", 64, "SLAAC")], dhcpcd, []),
        Observation("dhcpv6-stateful", "vm-f", MAC, "2001:db8:a3::3", _ra(1, 1, "2001:db8:a3::/64", 0),
                    [_addr(LL, 64, "link-local"), _addr("2001:db8:a3::3", 128, "DHCPv6")], dhcpcd,
                    ["2001:db8:a3::3"]),
    ]


def test_each_mode_gets_the_findings_its_flags_and_state_establish():
    got = facts(_observations())
    modes = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")
    assert set(got) == ({f"{k}:{m}" for k in ("ra", "client", "link_local") for m in modes}
                        | {"eui64:slaac", "eui64:dhcpv6-stateless", "dhcpv6:dhcpv6-stateful"})
    assert "2001:db8:a1:0:5054:ff:fe12:3456" in got["eui64:slaac"] and MAC in got["eui64:slaac"]
    assert got["ra:dhcpv6-stateful"].startswith("vm-f received an RA with M=1 O=1")
    assert "M=1 → DHCPv6 address 2001:db8:a3::3" in got["dhcpv6:dhcpv6-stateful"]
    assert "no DHCPv6 client runs" in got["client:slaac"]
    assert "dhcpcd (pid 42)" in got["client:dhcpv6-stateless"] and "options only" in got["client:dhcpv6-stateless"]


def test_a_finding_the_kernel_contradicts_shows_as_not_holding():
    slaac, stateless, stateful = _observations()
    slaac.addresses = [_addr(LL, 64, "link-local"), _addr("2001:db8:a1::99", 64, "SLAAC")]  # not the EUI-64
    stateless.client = {"program": "dhcpcd", "pid": None}  # O=1 but dhcpcd is not running
    stateful.leases = []  # the address is held but dnsmasq reported no lease row
    got = facts([slaac, stateless, stateful])
    assert "eui64:slaac" not in got and "2001:db8:a1::99" in got["no_eui64:slaac"]
    assert "client:dhcpv6-stateless" not in got and "is not running" in got["no_client:dhcpv6-stateless"]
    assert "dhcpv6:dhcpv6-stateful" not in got and "no_dhcpv6:dhcpv6-stateful" in got
    silent = facts([Observation("slaac", "vm-s", MAC, "", None, [_addr(LL, 64, "link-local")], None, [])])
    assert set(silent) == {"link_local:slaac", "no_ra:slaac"}
