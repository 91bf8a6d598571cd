"""Hypothesis strategies for adversarial input: names, hostnames, domains, CIDRs, ranges, addresses, MACs.

Each strategy mixes values that are almost right (a valid hostname with one newline inside) with plain random
text and values of the wrong type, because the almost-right ones are what slip through a careless regex.
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

# Characters and fragments that break line- or comma-separated files, shells, URLs, JSON or Unicode handling.
NASTY = [
    "\n", "\r", "\r\n", ",", ";", "#", "=", '"', "'", "\\", "\x00", "\t", " ", "\x0b", "\x0c", "\x1c", "\x85",
    "\u2028", "\u2029", "\ufeff", "\u200b", "é", "İ", "\u212a", "ß", "/", "%", ":", "-", ".", "..", "*", "$(id)",
    "tag:", "set:", "option:", "\n--server=8.8.8.8", ",8.8.8.8", "%eth0", "%x,y", "\nfa:16:3e:00:00:01,10.0.0.9",
]
SURROGATES = ["\ud800", "\udfff"]
PLAIN = list("az09-.A")

LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
PRIVATE_BLOCKS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def _no_surrogates(text: str) -> bool:
    return not any("\ud800" <= ch <= "\udfff" for ch in text)


def nasty_text(*, surrogates: bool = True, max_size: int = 80) -> st.SearchStrategy[str]:
    """Strings built to break things, from almost-valid to very long."""
    tokens = NASTY + PLAIN + (SURROGATES if surrogates else [])
    text = st.text(max_size=max_size)
    if not surrogates:
        text = text.filter(_no_surrogates)
    return st.one_of(
        text,
        st.lists(st.sampled_from(tokens), max_size=12).map("".join),
        LABEL,
        st.tuples(LABEL, st.sampled_from(tokens), LABEL).map("".join),
        st.tuples(st.sampled_from(tokens), LABEL).map("".join),
        st.tuples(LABEL, st.sampled_from(tokens)).map("".join),
        st.integers(60, 5000).map(lambda n: "a" * n),
        st.from_regex(r"[a-z0-9-]{62,70}", fullmatch=True),
    )


def _mixed_case(text_and_mask: tuple[str, list[bool]]) -> str:
    text, mask = text_and_mask
    return "".join(ch.upper() if up else ch for ch, up in zip(text, mask + [False] * len(text), strict=False))


def domains(*, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Domain-like strings: dotted labels, sometimes with a nasty fragment, a trailing dot or capitals.

    Capitals come all-upper and mixed ("Lab.Internal", "lAB.iNTERNAL"): what a person types.
    """
    dotted = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
    return st.one_of(
        dotted,
        dotted.map(lambda d: d + "."),
        dotted.map(str.upper),
        st.tuples(dotted, st.lists(st.booleans(), min_size=1, max_size=40)).map(_mixed_case),
        st.tuples(dotted, st.sampled_from(NASTY), dotted).map("".join),
        st.lists(LABEL, min_size=5, max_size=60).map(".".join),  # longer than 253 characters
        nasty_text(surrogates=surrogates, max_size=40),
    )


@st.composite
def private_cidrs(draw) -> str:
    """A valid tenant CIDR (private, /16–/29, network address)."""
    block = draw(st.sampled_from(PRIVATE_BLOCKS))
    prefix = draw(st.integers(max(16, block.prefixlen), 29))
    index = draw(st.integers(0, 2 ** (prefix - block.prefixlen) - 1))
    return f"{block.network_address + (index << (32 - prefix))}/{prefix}"


def cidrs(*, surrogates: bool = True) -> st.SearchStrategy[str]:
    """CIDR-like strings: valid, host bits set, huge/tiny prefixes, public ranges, IPv6, decorated."""
    return st.one_of(
        private_cidrs(),
        private_cidrs().map(lambda c: c.replace(".0/", ".5/")),
        st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=4), st.integers(-1, 40)),
        st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=6), st.integers(0, 130)),
        st.tuples(private_cidrs(), st.sampled_from(NASTY)).map("".join),
        st.tuples(st.sampled_from(NASTY), private_cidrs()).map("".join),
        st.sampled_from(["10.0.0.0/8", "0.0.0.0/0", "10.0.0.0/24/24", "010.0.0.0/24", "10.0.0.0/ 24",
                         "10.0.0.0/0x18", "10.0.0.0/255.255.255.0", "10.0.0.0/٢٤", "::/0", "10.0.0.0"]),
        nasty_text(surrogates=surrogates, max_size=50),
    )


def addresses_in(cidr: str) -> st.SearchStrategy[str]:
    net = ipaddress.ip_network(cidr)
    return st.integers(0, net.num_addresses - 1).map(lambda i: str(net.network_address + i))


def addresses(near: str = "10.20.0.0/24", *, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Address-like strings: inside ``near`` (often valid), anywhere, IPv6 with scope ids, decorated, garbage."""
    inside = addresses_in(near)
    return st.one_of(
        inside,
        inside,
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(str),
        st.tuples(inside, st.sampled_from(NASTY)).map("".join),
        st.tuples(st.sampled_from(["fe80::1%", "::ffff:10.20.0.5%", "::1%"]), nasty_text(surrogates=surrogates,
                                                                                         max_size=10)).map("".join),
        st.sampled_from(["::ffff:10.20.0.5", "10.20.0.05", "10.20.0", "10.20.0.5.", "0x0a.20.0.5", "4294967295",
                         "10.20.0.5 10.20.0.6", "auto", "none", ""]),
        nasty_text(surrogates=surrogates, max_size=30),
    )


def pools(near: str = "10.20.0.0/24", *, surrogates: bool = True) -> st.SearchStrategy[object]:
    """Allocation ranges in every shape the services accept, and some they must refuse."""
    addr = addresses(near, surrogates=surrogates)
    pair = st.tuples(addr, addr)
    return st.one_of(
        st.lists(pair, max_size=3),
        st.lists(pair.map(lambda p: {"start": p[0], "end": p[1]}), max_size=3),
        st.lists(pair.map("-".join), max_size=3).map("\n".join),
        nasty_text(surrogates=surrogates, max_size=60),
        st.just([]),
    )


def dns_lists(near: str = "10.20.0.0/24", *, surrogates: bool = True) -> st.SearchStrategy[object]:
    return st.one_of(st.lists(addresses(near, surrogates=surrogates), max_size=4), st.just([]),
                     st.sampled_from([["fe80::1%x,y"], ["fe80::1%a\nb"], ["::1"], ["1.1.1.1", "9.9.9.9"]]))


def lease_times() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(-(2**63), 2**63), st.sampled_from([0, 119, 120, 3600, 2592000, 2592001, 2**31]))


def macs() -> st.SearchStrategy[str]:
    good = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))
    return st.one_of(
        good, good.map(str.upper), good.map(lambda m: m.replace(":", "-")),
        st.tuples(good, st.sampled_from(NASTY)).map("".join), nasty_text(max_size=20),
    )


def any_value() -> st.SearchStrategy[object]:
    """Values of the wrong type (what a JSON client or a buggy caller may send)."""
    return st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


IPV6_MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")
IPV6_BLOCKS = tuple(ipaddress.ip_network(n) for n in ("2001:db8::/32", "fd3c:9a41:7e02::/48"))


@st.composite
def ipv6_tenant_cidrs(draw) -> str:
    """A valid IPv6 tenant prefix: /64–/120 in the documentation prefix or a generated ULA /48."""
    block = draw(st.sampled_from(IPV6_BLOCKS))
    prefix = draw(st.sampled_from([64, 64, 64, 80, 96, 112, 120]))
    index = draw(st.integers(0, 2 ** (prefix - block.prefixlen) - 1))
    return f"{block.network_address + (index << (128 - prefix))}/{prefix}"


def ipv6_cidrs() -> st.SearchStrategy[str]:
    """IPv6 CIDR-like strings: valid tenant prefixes, too short/long, global, host bits set, decorated."""
    return st.one_of(
        ipv6_tenant_cidrs(),
        ipv6_tenant_cidrs(),
        ipv6_tenant_cidrs(),
        ipv6_tenant_cidrs().map(lambda c: c.replace("::/", "::5/")),
        st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses(v=6), st.integers(0, 130)),
        st.tuples(ipv6_tenant_cidrs(), st.sampled_from(NASTY)).map("".join),
        st.sampled_from(["::/0", "2001:db8::/32", "fe80::/64", "ff02::/64", "2001:db8::/64%eth0", "2001:db8::"]),
        nasty_text(max_size=50),
    )


def ipv6_modes() -> st.SearchStrategy[object]:
    """Values for ipv6_ra_mode / ipv6_address_mode: the three, blank, near misses, hostile text, wrong types."""
    return st.one_of(
        st.sampled_from([*IPV6_MODES, ""]),
        st.sampled_from([*IPV6_MODES, ""]),
        st.sampled_from([*IPV6_MODES, ""]),
        st.sampled_from(["SLAAC", "slaac ", "dhcpv6-stateful\n", "dhcpv6_stateless", "ra-only", "static",
                         "slaac,ra-names", "dhcpv6"]),
        st.tuples(st.sampled_from(IPV6_MODES), st.sampled_from(NASTY)).map("".join),
        nasty_text(max_size=20),
        any_value(),
    )
