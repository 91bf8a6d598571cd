"""Validators that reject bad input and suggest the fix.

Why so strict: names, hostnames, domains and addresses end up in dnsmasq's hosts/options files and on
command lines. A newline or comma there would inject a line into dnsmasq's configuration, so every value is
checked against a positive pattern here (the edge) and again in the service layer and the host driver.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.core.exceptions import ValidationError

# One definition each, kept by the host layer (which imports nothing from Django): the shortest lease dnsmasq
# honours, and the address types both sides pass around (models and services use them from here).
from .host.validate import MIN_LEASE_SECONDS, IPAddress, IPNetwork

IPv4_MIN_PREFIX = 16
IPv4_MAX_PREFIX = 29
MAX_NAME_LENGTH = 64
MAX_HOSTNAME_LENGTH = 63
MAX_DOMAIN_LENGTH = 253
MAX_LEASE_SECONDS = 30 * 24 * 3600
MAX_DNS_SERVERS = 3

# Lone surrogates are included: they cannot be encoded as UTF-8, so the database would raise instead of saving.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# \Z, not $: "$" also matches before a trailing newline, which would let "name\n" into dnsmasq files.
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}\Z")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?\Z")
# Tenant subnets live in RFC 1918 space only. ipaddress's is_private is broader: it also says True for
# 0.0.0.0/8, TEST-NETs, 198.18.0.0/15 and 240.0.0.0/4, none of which a tenant should be handed.
PRIVATE_IPV4 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
# IPv6 tenant prefixes: unique local addresses (RFC 4193) or the documentation prefix; never global space.
TENANT_IPV6 = tuple(ipaddress.ip_network(n) for n in ("fc00::/7", "2001:db8::/32"))
IPv6_MIN_PREFIX = 64  # dnsmasq's DHCPv6 and RA need /64 or longer; SLAAC needs exactly /64
IPv6_MAX_PREFIX = 120
SLAAC_PREFIX = 64
# Neutron's ipv6_ra_mode / ipv6_address_mode values: who sends the RA, and how instances get addresses.
IPV6_MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")


def validate_display_name(value: str) -> None:
    """A human name for a tenant/network/subnet: printable, one line, trimmed, bounded."""
    if not value or not value.strip():
        raise ValidationError("Enter a name.", code="required")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"Name is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}.", code="max_length"
        )
    if _CONTROL.search(value):
        raise ValidationError("Name must be a single line without control characters.", code="control")
    if value != value.strip():
        raise ValidationError(f"Remove the leading/trailing spaces: {value.strip()!r}.", code="spaces")


def validate_slug(value: str) -> None:
    """Tenant slugs appear in URLs and group names: lowercase letters, digits and inner hyphens."""
    if not _SLUG.match(value or ""):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", (value or "").lower()).strip("-")[:50] or "tenant"
        raise ValidationError(
            f"{value!r} is not a valid slug (lowercase letters, digits, hyphens). Did you mean {suggestion!r}?",
            code="slug",
        )


def validate_hostname(value: str) -> None:
    """RFC 1123 host label, lowercase: it becomes a dnsmasq hosts-file entry and a DNS name."""
    if not value:
        raise ValidationError("Enter a hostname.", code="required")
    if _CONTROL.search(value) or "," in value:
        raise ValidationError("Hostname must not contain control characters or commas.", code="control")
    if len(value) > MAX_HOSTNAME_LENGTH:
        raise ValidationError(
            f"Hostname is {len(value)} characters; the limit is {MAX_HOSTNAME_LENGTH}.", code="max_length"
        )
    if not _HOSTNAME.match(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:MAX_HOSTNAME_LENGTH].strip("-")
        hint = f" Did you mean {suggestion!r}?" if suggestion and _HOSTNAME.match(suggestion) else ""
        raise ValidationError(
            f"{value!r} is not a valid hostname: use lowercase letters, digits and inner hyphens "
            f"(RFC 1123).{hint}",
            code="hostname",
        )


def validate_domain_name(value: str) -> None:
    """DNS search domain handed out by DHCP, e.g. ``tenant-a.internal`` (empty means none)."""
    if not value:
        return
    if len(value) > MAX_DOMAIN_LENGTH:
        raise ValidationError(f"Domain name is longer than {MAX_DOMAIN_LENGTH} characters.", code="max_length")
    if value.endswith("."):
        # A fully-qualified trailing dot would pass here but not the host driver's check, failing every realise
        # job of the network: refuse it with the fix instead.
        raise ValidationError(f"Remove the trailing dot: {value.rstrip('.')!r}.", code="domain_trailing_dot")
    for label in value.split("."):
        if not _HOSTNAME.match(label):
            raise ValidationError(
                f"{value!r} is not a valid domain name: each dot-separated label must be lowercase letters, "
                "digits and inner hyphens (e.g. 'tenant-a.internal').",
                code="domain",
            )


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lowercase_domain(value: str) -> str:
    """``value`` with its ASCII capitals lowercased, for the services to store what people type ("Lab.Internal").

    Not ``str.lower()``: that maps the Kelvin sign to "k" and "İ" to "i" plus a combining dot, turning a look-alike
    into a name that passes :func:`validate_domain_name`; left as typed, those are refused there.
    """
    return value.translate(_ASCII_LOWER)


def validate_mac(value: str) -> None:
    """A unicast, lowercase, colon-separated MAC address."""
    if not _MAC.match(value or ""):
        raise ValidationError(
            f"{value!r} is not a MAC address; use the form 'fa:16:3e:12:34:56'.", code="mac"
        )
    if int(value[:2], 16) & 1:
        raise ValidationError(f"{value} is a multicast MAC; the first octet must be even.", code="mac_multicast")


def parse_network(value: str) -> IPNetwork:
    """Parse a CIDR, insisting it is the network address; suggest the right one when it is not."""
    text = (value or "").strip()
    if not text or _CONTROL.search(text):
        raise ValidationError("Enter a CIDR such as 192.168.1.0/24.", code="cidr")
    if "/" not in text:
        raise ValidationError(f"{text!r} has no prefix length. Did you mean {text}/24?", code="cidr_no_prefix")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValidationError(f"{text!r} is not a valid CIDR such as 192.168.1.0/24.", code="cidr") from None
        raise ValidationError(
            f"{text} is not a network address. Did you mean {loose}?", code="cidr_host_bits"
        ) from None
    return network


def validate_subnet_cidr(value: str) -> IPNetwork:
    """A tenant subnet: a network address, IPv4 /16–/29 in a private range (tenants stay inside namespaces)."""
    network = parse_network(value)
    if network.version == 6:
        return _validate_ipv6_cidr(network)
    if not IPv4_MIN_PREFIX <= network.prefixlen <= IPv4_MAX_PREFIX:
        raise ValidationError(
            f"Prefix length /{network.prefixlen} is outside /{IPv4_MIN_PREFIX}–/{IPv4_MAX_PREFIX}; "
            "pools must stay a sane size.",
            code="prefixlen",
        )
    if not any(network.subnet_of(block) for block in PRIVATE_IPV4):
        raise ValidationError(
            f"{network} is not a private range; use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.",
            code="not_private",
        )
    return network


# External networks stand in for the outside world: only the documentation ranges the project may simulate it on
# (TEST-NET-2 and -3). Never 192.0.2.0/24 (TEST-NET-1): the host this runs on uses it.
EXTERNAL_IPV4 = tuple(ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24"))


EXTERNAL_IPV6 = ipaddress.ip_network("2001:db8::/32")  # RFC 3849


def validate_external_cidr(value: str) -> IPNetwork:
    """An external network's subnet: IPv4 /24–/29 inside 198.51.100.0/24 or 203.0.113.0/24, or an IPv6 /64
    inside 2001:db8::/32 (the simulated outside of routed IPv6; routers derive their address in it)."""
    network = parse_network(value)
    if network.version == 6:
        if network.prefixlen != 64 or not network.subnet_of(EXTERNAL_IPV6):
            raise ValidationError(f"{network} is not a simulated outside range for IPv6; use a /64 inside "
                                  f"{EXTERNAL_IPV6}.", code="not_external_range")
        return network
    if network.version != 4 or not any(network.subnet_of(block) for block in EXTERNAL_IPV4):
        raise ValidationError(
            f"{network} is not a simulated outside range; use 198.51.100.0/24 or 203.0.113.0/24 (or a part of one).",
            code="not_external_range",
        )
    if network.prefixlen > IPv4_MAX_PREFIX:
        raise ValidationError(f"Prefix length /{network.prefixlen} leaves too few addresses; use at most "
                              f"/{IPv4_MAX_PREFIX}.", code="prefixlen")
    return network


def _validate_ipv6_cidr(network: ipaddress.IPv6Network) -> ipaddress.IPv6Network:
    """An IPv6 tenant subnet: /64–/120 inside ULA or 2001:db8::/32 (isolated, so it may overlap other tenants)."""
    if not IPv6_MIN_PREFIX <= network.prefixlen <= IPv6_MAX_PREFIX:
        raise ValidationError(
            f"Prefix length /{network.prefixlen} is outside /{IPv6_MIN_PREFIX}–/{IPv6_MAX_PREFIX}; "
            f"router advertisements and DHCPv6 need /64 or longer. Did you mean {network.network_address}/64?",
            code="prefixlen",
        )
    if not any(network.subnet_of(block) for block in TENANT_IPV6):
        raise ValidationError(
            f"{network} is not a unique local or documentation prefix; use one inside fc00::/7 (e.g. an RFC 4193 "
            "fdXX:XXXX:XXXX::/48) or 2001:db8::/32.",
            code="not_private",
        )
    return network


def validate_ipv6_modes(network: IPNetwork, ra_mode: str, address_mode: str) -> None:
    """Neutron's matrix: ``ra_mode`` equal to ``address_mode``, or address mode only (an outside router sends the
    RAs); mixed pairs are refused. SLAAC and stateless need a /64 (the interface identifier is 64 bits)."""
    valid = ", ".join(f"{m}/{m}" for m in IPV6_MODES)
    for label, mode in (("RA mode", ra_mode), ("address mode", address_mode)):
        if mode and mode not in IPV6_MODES:
            raise ValidationError(f"{mode!r} is not an IPv6 {label}; use one of {', '.join(IPV6_MODES)}.",
                                  code="ipv6_mode")
    if network.version == 4:
        if ra_mode or address_mode:
            raise ValidationError(f"{network} is an IPv4 subnet; IPv6 RA and address modes apply to IPv6 only.",
                                  code="ipv6_mode_v4")
        return
    if not address_mode:
        raise ValidationError(f"Choose an IPv6 address mode for {network}; valid RA/address mode pairs are "
                              f"{valid}, or an address mode alone.", code="ipv6_mode_required")
    if ra_mode and ra_mode != address_mode:
        raise ValidationError(f"RA mode {ra_mode} with address mode {address_mode} is not a valid pair; valid "
                              f"pairs are {valid}, or an address mode alone.", code="ipv6_mode_pair")
    if address_mode != "dhcpv6-stateful" and network.prefixlen != SLAAC_PREFIX:
        raise ValidationError(f"{address_mode} needs a /{SLAAC_PREFIX} (SLAAC builds a 64-bit interface id). "
                              f"Did you mean {network.network_address}/{SLAAC_PREFIX}?", code="ipv6_slaac_prefix")


def eui64_address(network: IPNetwork, mac: str) -> ipaddress.IPv6Address:
    """The address SLAAC gives ``mac`` in the /64 ``network`` (RFC 4291 modified EUI-64), known before it appears."""
    octets = bytes.fromhex(mac.replace(":", ""))
    interface_id = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return ipaddress.IPv6Address(int(network.network_address) | int.from_bytes(interface_id, "big"))


def parse_address(value: object, *, field: str = "address") -> IPAddress:
    """Parse one IP address with a readable error."""
    text = str(value or "").strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a valid IP {field}.", code="ip") from None
    if getattr(address, "scope_id", None) is not None:
        # ipaddress accepts any text after "%" as an IPv6 zone, commas and newlines included: it would reach
        # dnsmasq's files as extra fields or lines.
        raise ValidationError(f"{text!r}: remove the zone ('%{address.scope_id}'); give a plain IP {field}.",
                              code="ip_zone")
    return address


def usable_bounds(network: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """First and last host addresses (network and broadcast excluded for IPv4)."""
    if network.version == 4 and network.prefixlen <= 30:
        return network.network_address + 1, network.broadcast_address - 1
    return network.network_address + 1, network.broadcast_address


def validate_host_address(address: IPAddress, network: IPNetwork, *, what: str) -> None:
    """An address usable by a host in ``network``: inside it, not the network or broadcast address."""
    if address.version != network.version or address not in network:
        raise ValidationError(f"The {what} {address} is not inside {network}.", code="outside")
    first, last = usable_bounds(network)
    if not first <= address <= last:
        kind = "network" if address == network.network_address else "broadcast"
        raise ValidationError(
            f"The {what} {address} is the {kind} address of {network}; use one between {first} and {last}.",
            code="reserved_address",
        )


def parse_pools(value: object) -> list[tuple[IPAddress, IPAddress]]:
    """Accept pools as [(start, end)], [{"start":..,"end":..}] or text lines "start-end"."""
    if value in (None, "", []):
        return []
    items: Iterable[object]
    if isinstance(value, str):
        items = [line for line in re.split(r"[\n;]+", value) if line.strip()]
    else:
        items = value  # type: ignore[assignment]
    pools: list[tuple[IPAddress, IPAddress]] = []
    for item in items:
        if isinstance(item, str):
            if "-" not in item:
                raise ValidationError(
                    f"{item.strip()!r} is not a range; write it as start-end, e.g. 192.168.1.10-192.168.1.200.",
                    code="pool",
                )
            start_text, end_text = item.split("-", 1)
        elif isinstance(item, dict):
            start_text, end_text = item.get("start"), item.get("end")
        elif isinstance(item, list | tuple) and len(item) == 2:
            start_text, end_text = item
        else:
            raise ValidationError(f"{item!r} is not a range; give a start and an end address.", code="pool")
        pools.append((parse_address(start_text, field="range start"), parse_address(end_text, field="range end")))
    return pools


def validate_pools(
    pools: Sequence[tuple[IPAddress, IPAddress]],
    network: IPNetwork,
    *,
    excluded: dict[str, IPAddress | None],
) -> None:
    """Allocation ranges: inside the subnet, ordered, disjoint, and not covering the gateway / DHCP address."""
    errors: list[str] = []
    comparable: list[tuple[IPAddress, IPAddress]] = []
    for start, end in pools:
        for address, label in ((start, "start"), (end, "end")):
            try:
                validate_host_address(address, network, what=f"range {label}")
            except ValidationError as exc:
                errors.extend(exc.messages)
        if start.version != network.version or end.version != network.version:
            continue  # already reported as outside; addresses of different versions cannot be ordered
        comparable.append((start, end))
        if start > end:
            errors.append(f"Range {start}-{end} is reversed. Did you mean {end}-{start}?")
        for label, address in excluded.items():
            if address is not None and address.version == start.version and start <= address <= end:
                errors.append(
                    f"Range {start}-{end} contains the {label} {address}; start the range after it "
                    f"(e.g. {address + 1}-{end})." if address < end else
                    f"Range {start}-{end} contains the {label} {address}; end the range before it."
                )
    ordered = sorted(comparable)
    for (a_start, a_end), (b_start, b_end) in zip(ordered, ordered[1:], strict=False):
        if b_start <= a_end:
            errors.append(f"Ranges {a_start}-{a_end} and {b_start}-{b_end} overlap.")
    if errors:
        raise ValidationError(errors, code="pool")


def validate_lease_seconds(value: int) -> None:
    if not MIN_LEASE_SECONDS <= int(value) <= MAX_LEASE_SECONDS:
        raise ValidationError(
            f"Lease time {value}s is outside {MIN_LEASE_SECONDS}s–{MAX_LEASE_SECONDS}s.", code="lease_time"
        )


def validate_dns_servers(values: Sequence[object], version: int = 4) -> list[str]:
    """Up to three IP addresses of the subnet's family handed to clients as DNS servers (normalised strings)."""
    if not isinstance(values, list | tuple):
        raise ValidationError('DNS servers must be a list of addresses, e.g. ["9.9.9.9"].', code="dns_list")
    if len(values) > MAX_DNS_SERVERS:
        raise ValidationError(f"At most {MAX_DNS_SERVERS} DNS servers.", code="dns_count")
    servers = [parse_address(v, field="DNS server") for v in values]
    for server in servers:
        if version == 6 and server.version != 6:
            raise ValidationError(f"{server} is not an IPv6 address; DHCPv6 and RAs hand out IPv6 DNS servers only.",
                                  code="dns_version")
        if version == 4 and server.version != 4:
            # Subnets are IPv4 and DHCPv4's DNS option carries IPv4 addresses only: dnsmasq refuses the line.
            raise ValidationError(f"{server} is not an IPv4 address; DHCP hands out IPv4 DNS servers only.",
                                  code="dns_version")
    return [str(server) for server in servers]


@contextmanager
def collect_errors(errors: dict[str, list[str]], field: str) -> Iterator[None]:
    """Add a failed check's messages to ``errors[field]`` and go on, so ``clean()`` reports every field at once."""
    try:
        yield
    except ValidationError as exc:
        errors.setdefault(field, []).extend(exc.messages)
