"""Validators on their own: CIDR, address, pool and name rules, example-based and property-based."""

import ipaddress
import re

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants import validators as v

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

# Characters that must never reach a dnsmasq file or command line, plus harmless-looking troublemakers.
NASTY = ["\n", "\r", ",", "\x00", "\t", "\x7f", "\x85", "\u2028", "\u2029", "\ud800", '"', "'", "é", "Ω", "🙂",
         " ", "#", "=", "/", "\\", ";", "-", "."]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=()),
                                st.sampled_from("abcxyz0189-")), max_size=300).map("".join)


def accepted(check, value) -> bool:
    """True when ``check`` accepts ``value``; False when it refuses with a ValidationError that says why."""
    try:
        check(value)
    except ValidationError as exc:
        assert exc.messages
        return False
    return True


def ipv4(lo=0, hi=2**32 - 1):
    return st.integers(lo, hi).map(ipaddress.IPv4Address)


def private_networks():
    """Any IPv4 network /16–/29 inside one of the RFC 1918 blocks."""

    @st.composite
    def build(draw):
        block = draw(st.sampled_from(RFC1918))
        prefixlen = draw(st.integers(v.IPv4_MIN_PREFIX, v.IPv4_MAX_PREFIX))
        host = draw(ipv4(int(block.network_address), int(block.broadcast_address)))
        return ipaddress.ip_network(f"{host}/{prefixlen}", strict=False)

    return build()


def message(exc_info):
    return " ".join(exc_info.value.messages)


# --- CIDR -------------------------------------------------------------------------------------------------

@PROPS
@given(private_networks())
def test_any_private_network_address_is_accepted_and_normalised(net):
    assert v.validate_subnet_cidr(str(net)) == net
    # Surrounding whitespace and the netmask spelling normalise to the same network.
    assert v.validate_subnet_cidr(f"  {net.network_address}/{net.netmask}\t") == net


@PROPS
@given(private_networks(), st.data())
def test_any_cidr_with_host_bits_is_rejected_with_the_network_suggested(net, data):
    host = data.draw(ipv4(int(net.network_address) + 1, int(net.broadcast_address)))
    with pytest.raises(ValidationError) as exc:
        v.validate_subnet_cidr(f"{host}/{net.prefixlen}")
    assert exc.value.code == "cidr_host_bits"
    assert f"{host}/{net.prefixlen} is not a network address. Did you mean {net}?" in message(exc)


@PROPS
@given(ipv4(), st.integers(v.IPv4_MIN_PREFIX, v.IPv4_MAX_PREFIX))
def test_a_network_is_accepted_exactly_when_it_is_inside_rfc1918(host, prefixlen):
    net = ipaddress.ip_network(f"{host}/{prefixlen}", strict=False)
    inside = any(net.subnet_of(block) for block in RFC1918)
    if inside:
        assert v.validate_subnet_cidr(str(net)) == net
    else:
        with pytest.raises(ValidationError) as exc:
            v.validate_subnet_cidr(str(net))
        assert exc.value.code == "not_private"


@pytest.mark.parametrize("cidr", ["192.0.2.0/24", "198.18.0.0/16", "240.0.0.0/16", "0.0.0.0/16",
                                  "255.255.255.0/29", "100.64.0.0/16", "8.8.8.0/24", "172.32.0.0/16"])
def test_reserved_and_documentation_ranges_are_not_private(cidr):
    # Python's is_private also says True for TEST-NET, benchmarking, 0/8 and 240/4; tenants get RFC 1918 only.
    with pytest.raises(ValidationError, match="is not a private range"):
        v.validate_subnet_cidr(cidr)


@PROPS
@given(ipv4(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.255.255.255"))),
       st.sampled_from([8, 9, 12, 15, 30, 31, 32]))
def test_prefix_lengths_outside_16_to_29_are_rejected(host, prefixlen):
    net = ipaddress.ip_network(f"{host}/{prefixlen}", strict=False)
    with pytest.raises(ValidationError) as exc:
        v.validate_subnet_cidr(str(net))
    assert exc.value.code == "prefixlen"
    assert f"Prefix length /{prefixlen} is outside /16–/29" in message(exc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.5/24", "Did you mean 192.168.1.0/24?"),
        ("192.168.1.0", "has no prefix length. Did you mean 192.168.1.0/24?"),
        ("192.168.1.0/33", "is not a valid CIDR"),
        ("banana/24", "is not a valid CIDR"),
        ("2001:db8:5::/48", "Prefix length /48 is outside /64–/120; router advertisements and DHCPv6 need /64 or "
                            "longer. Did you mean 2001:db8:5::/64?"),
        ("2a00:1450::/64", "is not a unique local or documentation prefix"),
        ("", "Enter a CIDR"),
        ("192.168.1.0/24\n10.0.0.0/8", "Enter a CIDR"),
        ("10.0.0.0/30", "outside /16–/29"),
    ],
)
def test_cidr_errors_say_what_to_do(text, expected):
    with pytest.raises(ValidationError) as exc:
        v.validate_subnet_cidr(text)
    assert expected in message(exc)


@PROPS
@given(nasty_text)
def test_cidr_parsing_never_raises_anything_but_validation_error(text):
    try:
        net = v.validate_subnet_cidr(text)
    except ValidationError:
        return
    assert str(net) == text.strip()


# --- addresses and pools ----------------------------------------------------------------------------------

def test_host_address_rules():
    net = ipaddress.ip_network("192.168.1.0/24")
    v.validate_host_address(ipaddress.ip_address("192.168.1.1"), net, what="gateway")
    for address, expected in [("192.168.1.0", "is the network address"), ("192.168.1.255", "is the broadcast"),
                              ("192.168.2.1", "is not inside"), ("fd00::1", "is not inside")]:
        with pytest.raises(ValidationError, match=expected):
            v.validate_host_address(ipaddress.ip_address(address), net, what="gateway")


@st.composite
def pool_case(draw):
    net = draw(private_networks().filter(lambda n: n.prefixlen >= 22))
    size = net.num_addresses
    offsets = st.integers(0, size - 1)
    pools = draw(st.lists(st.tuples(offsets, offsets), min_size=1, max_size=4))
    gateway = draw(st.one_of(st.none(), st.integers(1, size - 2)))
    dhcp = draw(st.integers(1, size - 2).filter(lambda o: o != gateway))
    base = net.network_address
    return net, [(base + s, base + e) for s, e in pools], (base + gateway if gateway else None), base + dhcp


def pools_ok(net, pools, gateway, dhcp):
    """The rule, stated independently: inside, ordered, disjoint, not covering gateway or DHCP address."""
    first, last = net.network_address + 1, net.broadcast_address - 1
    for start, end in pools:
        if not (first <= start <= end <= last):
            return False
        if any(a is not None and start <= a <= end for a in (gateway, dhcp)):
            return False
    for i, (a_start, a_end) in enumerate(pools):
        for b_start, b_end in pools[i + 1:]:
            if a_start <= b_end and b_start <= a_end:
                return False
    return True


@PROPS
@given(pool_case())
def test_random_pools_are_accepted_exactly_when_valid(case):
    net, pools, gateway, dhcp = case
    excluded = {"gateway": gateway, "DHCP server address": dhcp}
    if pools_ok(net, pools, gateway, dhcp):
        v.validate_pools(pools, net, excluded=excluded)
    else:
        with pytest.raises(ValidationError) as exc:
            v.validate_pools(pools, net, excluded=excluded)
        assert exc.value.messages, "a rejected pool must say why"


def test_pool_messages_suggest_the_fix():
    net = ipaddress.ip_network("192.168.1.0/24")
    a = ipaddress.ip_address
    cases = [
        ([(a("192.168.1.200"), a("192.168.1.10"))], "Did you mean 192.168.1.10-192.168.1.200?"),
        ([(a("192.168.1.1"), a("192.168.1.50"))], "contains the gateway 192.168.1.1; start the range after it "
                                                  "(e.g. 192.168.1.2-192.168.1.50)"),
        ([(a("192.168.1.10"), a("192.168.1.20")), (a("192.168.1.15"), a("192.168.1.30"))], "overlap"),
        ([(a("192.168.1.10"), a("192.168.2.20"))], "is not inside 192.168.1.0/24"),
    ]
    for pools, expected in cases:
        with pytest.raises(ValidationError) as exc:
            v.validate_pools(pools, net, excluded={"gateway": a("192.168.1.1")})
        assert expected in message(exc)


@pytest.mark.parametrize("pools", [
    "192.168.1.10-::1",
    [("fd00::1", "fd00::9")],
    "192.168.1.10-192.168.1.20;fd00::1-fd00::2",
    [("192.168.1.10",)],
    [("192.168.1.10", "192.168.1.11", "192.168.1.12")],
    [42],
    [None],
    "192.168.1.10",
])
def test_malformed_pools_are_validation_errors(pools):
    net = ipaddress.ip_network("192.168.1.0/24")
    with pytest.raises(ValidationError):
        v.validate_pools(v.parse_pools(pools), net, excluded={"gateway": ipaddress.ip_address("192.168.1.1")})


@PROPS
@given(nasty_text)
def test_pool_text_never_raises_anything_but_validation_error(text):
    net = ipaddress.ip_network("192.168.1.0/24")
    try:
        v.validate_pools(v.parse_pools(text), net, excluded={"gateway": ipaddress.ip_address("192.168.1.1")})
    except ValidationError:
        pass


# --- names, hostnames, domains, MACs ----------------------------------------------------------------------

@PROPS
@given(nasty_text)
def test_display_names_are_one_clean_line_or_a_validation_error(text):
    if not accepted(v.validate_display_name, text):
        return
    assert 0 < len(text) <= v.MAX_NAME_LENGTH
    assert text == text.strip()
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", text)
    text.encode("utf-8")  # storable in any database


@PROPS
@given(nasty_text)
def test_hostnames_are_rfc1123_labels_or_a_validation_error(text):
    if not accepted(v.validate_hostname, text):
        return
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", text)


@PROPS
@given(nasty_text)
def test_domain_names_are_dotted_labels_or_a_validation_error(text):
    try:
        v.validate_domain_name(text)
    except ValidationError:
        return
    assert text == "" or re.fullmatch(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.?",
                                      text)


@pytest.mark.parametrize(("validator", "value"), [
    (v.validate_domain_name, "acme.internal\n"),
    (v.validate_domain_name, "acme.internal\nserver=8.8.8.8"),
    (v.validate_slug, "acme\n"),
    (v.validate_mac, "fa:16:3e:00:00:01\n"),
    (v.validate_hostname, "vm1\n"),
    (v.validate_hostname, "vm1,10.0.0.9"),
    (v.validate_display_name, "net\n"),
    (v.validate_display_name, "net\ud800"),
])
def test_a_trailing_newline_or_separator_never_passes(validator, value):
    # A trailing newline would add a line to dnsmasq's options/hosts files.
    with pytest.raises(ValidationError):
        validator(value)


def test_hostname_suggestion():
    with pytest.raises(ValidationError, match="Did you mean 'my-vm-1'"):
        v.validate_hostname("My VM 1")
    with pytest.raises(ValidationError, match="the limit is 63"):
        v.validate_hostname("a" * 64)


@pytest.mark.parametrize(("value", "ok"), [
    ("fa:16:3e:12:34:56", True), ("FA:16:3E:12:34:56", False), ("fb:16:3e:12:34:56", False),
    ("fa-16-3e-12-34-56", False), ("fa:16:3e:12:34", False), ("", False),
])
def test_mac_rules(value, ok):
    if ok:
        v.validate_mac(value)
    else:
        with pytest.raises(ValidationError):
            v.validate_mac(value)


def test_lease_time_and_dns_servers():
    v.validate_lease_seconds(120)
    with pytest.raises(ValidationError, match="outside 120s"):
        v.validate_lease_seconds(119)
    assert v.validate_dns_servers(["8.8.8.8", " 1.1.1.1 "]) == ["8.8.8.8", "1.1.1.1"]
    with pytest.raises(ValidationError, match="At most 3"):
        v.validate_dns_servers(["1.1.1.1"] * 4)
    with pytest.raises(ValidationError, match="not a valid IP DNS server"):
        v.validate_dns_servers(["8.8.8.8,9.9.9.9"])


@pytest.mark.parametrize("value", ["8.8.8.8", 5, {"a": 1}, [["8.8.8.8"]], [None]])
def test_dns_servers_of_the_wrong_shape_are_validation_errors(value):
    # JSON from the admin or API can be any shape; only a list of address strings is valid.
    with pytest.raises(ValidationError):
        v.validate_dns_servers(value)
