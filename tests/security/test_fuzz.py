"""Property-based fuzzing of every input path (GitHub issue 8, "Bad input").

Properties:

* validators, services, portal forms and API payloads refuse bad input with a ValidationError / 4xx — never
  another exception, never a 5xx;
* whatever the Django layer accepts, the host layer accepts too (a DB-valid value must not fail in a job), and
  the host specs refuse anything else with ``HostInputError`` only;
* for every accepted object the network's dnsmasq hosts and options files, rendered exactly as the driver
  renders them, parse back to exactly the intended entries: one line per reservation, each field equal to the
  database value, nothing more.

Sizes: many cheap examples for validators/specs/rendering, fewer for the database and HTTP paths, so the CI run
does well over 10,000 examples in a few minutes on two cores. ``NETDASH_SOAK=1`` multiplies every size by 10.
The figures are printed at the end of the run and written to ``$ARTIFACTS_DIR/fuzz.json``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client
from fuzz_strategies import (
    LABEL,
    addresses,
    any_value,
    cidrs,
    dns_lists,
    domains,
    ipv6_cidrs,
    ipv6_modes,
    lease_times,
    macs,
    nasty_text,
    pools,
    private_cidrs,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from security_helpers import record, size

from tenants import hostspecs, services, validators
from tenants.choices import ObjectStatus, Role
from tenants.host import dnsmasq
from tenants.host import validate as hv
from tenants.host.errors import HostInputError
from tenants.host.specs import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec
from tenants.models import Instance, Network, Subnet

FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                     HealthCheck.filter_too_much, HealthCheck.data_too_large]}


def pure(base: int):
    return settings(max_examples=size(base), **FUZZ)


# --- cases for the real dnsmasq ---------------------------------------------------------------------------

# What breaks a line- or comma-separated file or an argv: every accepted case whose input held one of these
# before validation goes to the real dnsmasq, plus a sample of the others.
DANGEROUS = frozenset("\n\r\x00,;#=\"'\\/ \t\x0b\x0c\x1c\x85\u2028\u2029")
ORDINARY_SAMPLE = 40
# (hosts file, opts file, argv) → (spec, dangerous): one entry per distinct configuration dnsmasq would read.
REAL_DNSMASQ_CASES: dict[tuple[str, str, tuple[str, ...]], tuple[NetworkSpec, bool]] = {}


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def offer_to_dnsmasq(spec: NetworkSpec, raw: object) -> None:
    """Keep ``spec`` for ``test_the_real_dnsmasq_reads_exactly_the_rendered_entries`` if its input was
    dangerous (always) or while the ordinary sample is not full."""
    if not spec.dhcp_subnets:
        return  # no dnsmasq runs for it
    real = replace(spec, kernel_id=REAL_KERNEL_ID)
    key = (dnsmasq.render_hosts(real), dnsmasq.render_opts(real), tuple(real_argv(real)))
    dangerous = any(ch in DANGEROUS for text in _strings(raw) for ch in text)
    ordinary = sum(1 for _, d in REAL_DNSMASQ_CASES.values() if not d)
    if key not in REAL_DNSMASQ_CASES and (dangerous or ordinary < ORDINARY_SAMPLE):
        REAL_DNSMASQ_CASES[key] = (real, dangerous)


REAL_KERNEL_ID = "f022dead"  # the one network the real-dnsmasq test realises (under this run's prefix)


def real_argv(spec: NetworkSpec) -> list[str]:
    return hostspecs.driver().dnsmasq_command(spec).argv()


# --- the dnsmasq files, parsed back ---------------------------------------------------------------------

def file_lines(text: str) -> list[list[str]]:
    """Lines of a rendered dnsmasq file split into fields, after checking nothing can hide an extra line."""
    assert text == "" or text.endswith("\n"), repr(text[-20:])
    lines = text.split("\n")[:-1]
    assert text.isascii(), "non-ASCII in a dnsmasq file"
    assert text.splitlines() == lines, "a line separator other than \\n"
    for line in lines:
        assert line and not any(ch.isspace() or ch in "#\x00\"'\\" for ch in line), repr(line)
    return [line.split(",") for line in lines]


def expected_opts(subnets) -> list[list[str]]:
    """What the options file must say for these DB subnets (or specs), in order."""
    out: list[list[str]] = []
    for s in subnets:
        tag = f"tag:{s['tag']}"
        out.append([tag, "option:router", *([s["gateway"]] if s["gateway"] else [])])
        out.append([tag, "option:dns-server", *(s["dns"] or [s["dhcp"]])])
        if s["domain"]:
            out.append([tag, "option:domain-name", s["domain"]])
    return out


def assert_network_files_exact(network: Network, raw: object = None) -> int:
    """Render ``network``'s dnsmasq files and argv the way the agent does; compare with the DB. Returns #lines.

    ``raw`` is the input that led here: the spec is also offered to the real dnsmasq (see ``offer_to_dnsmasq``).
    """
    spec = hostspecs.network_spec(network)  # what the realise job builds: must not raise for DB-valid rows
    offer_to_dnsmasq(spec, raw)
    subnets = list(Subnet.objects.filter(network=network).order_by("id"))
    dhcp = [s for s in subnets if s.enable_dhcp]
    dhcp_nets = [ipaddress.ip_network(s.cidr) for s in dhcp]
    reserved = [i for i in Instance.objects.filter(network=network).exclude(status=ObjectStatus.DELETING)
                .exclude(ip_address=None).order_by("id")
                if any(ipaddress.ip_address(i.ip_address) in n for n in dhcp_nets)]
    hosts = file_lines(dnsmasq.render_hosts(spec))
    assert hosts == [[i.mac_address, i.ip_address, i.hostname] for i in reserved]
    opts = file_lines(dnsmasq.render_opts(spec))
    assert opts == expected_opts([
        {"tag": f"s{s.pk}", "gateway": s.gateway, "dns": s.dns_nameservers, "dhcp": s.dhcp_address,
         "domain": s.domain_name} for s in dhcp])
    cmd = dnsmasq.command_for(spec, binary="/usr/sbin/dnsmasq", interface="nd-dx", pid_file=Path("/s/pid"),
                              lease_file=Path("/s/l"), hosts_file=Path("/s/h"), opts_file=Path("/s/o"),
                              log_file=Path("/s/log"))
    argv = cmd.argv()
    assert all(arg.isprintable() and arg.isascii() for arg in argv)
    assert [a for a in argv if a.startswith("--domain=") and "," in a] == [
        f"--domain={s.domain_name},{s.cidr}" for s in dhcp if s.domain_name]
    assert not any(a.startswith("--server") for a in argv)
    for instance in Instance.objects.filter(network=network):
        hostspecs.instance_spec(instance)  # what realise_instance builds
    return len(hosts) + len(opts)


# --- validators: only ValidationError; accepted ⇒ the host layer accepts too -----------------------------

def _accepts(fn, *args) -> bool:
    try:
        fn(*args)
    except ValidationError:
        return False
    return True


@pure(2200)
@given(value=nasty_text())
def test_hostname_and_name_validators(value):
    ok = _accepts(validators.validate_hostname, value)
    if ok:
        assert hv.hostname(value) == value
    _accepts(validators.validate_display_name, value)
    _accepts(validators.validate_slug, value)
    record("validators.names", examples=1, accepted=int(ok))


@pure(1500)
@given(value=domains())
def test_domain_validator(value):
    """As typed, capitals included: ``validate_domain_name`` documents lowercase labels, so a domain with capitals
    is refused with a message saying so (the services lowercase first: see the services fuzz and
    ``test_services_lowercase_a_mixed_case_domain``)."""
    ok = _accepts(validators.validate_domain_name, value)
    if ok and value:
        assert value.isascii() and value == value.lower(), repr(value)
        assert hv.domain(value) == value
    if value != value.lower() and _accepts(validators.validate_domain_name, value.lower()):
        with pytest.raises(ValidationError, match="lowercase"):
            validators.validate_domain_name(value)
    record("validators.domain", examples=1, accepted=int(ok), mixed_case=int(value != value.lower()))


@pure(1000)
@given(value=macs())
def test_mac_validator(value):
    ok = _accepts(validators.validate_mac, value)
    if ok:
        assert hv.mac(value) == value
    record("validators.mac", examples=1, accepted=int(ok))


@pure(1500)
@given(value=cidrs(), gateway=addresses(), dns=dns_lists(), pool=pools())
def test_cidr_address_pool_and_dns_validators(value, gateway, dns, pool):
    accepted = 0
    try:
        net = validators.validate_subnet_cidr(value)
        assert hv.network(str(net)) == net
        accepted += 1
    except ValidationError:
        net = ipaddress.ip_network("10.20.0.0/24")
    try:
        address = validators.parse_address(gateway)
        assert hv.ip(str(address)) == address
        validators.validate_host_address(address, net, what="gateway")
        hv.in_subnet(hv.ip(str(address)), hv.network(str(net)), "gateway")
        accepted += 1
    except ValidationError:
        pass
    try:
        servers = validators.validate_dns_servers(dns)
        # One field per server in the options file: an address may not carry a comma or a line break.
        line = file_lines(f"tag:s1,option:dns-server,{','.join(str(hv.ip(x)) for x in servers)}\n")
        assert line == [["tag:s1", "option:dns-server", *servers]] if servers else True
        accepted += 1
    except ValidationError:
        pass
    try:
        parsed = validators.parse_pools(pool)
        validators.validate_pools(parsed, net, excluded={"gateway": None})
        accepted += 1
    except ValidationError:
        pass
    record("validators.addresses", examples=1, accepted_checks=accepted)


# --- host specs: only HostInputError; a built spec renders exactly its values -----------------------------

def _maybe(strategy):
    return st.one_of(strategy, any_value())


def _usually(good, bad):
    """Mostly a valid value, sometimes a hostile one: a spec with one bad field must be refused as a whole."""
    return st.tuples(st.sampled_from([False] * 7 + [True]), good, bad).map(lambda t: t[2] if t[0] else t[1])


UNICAST_MAC = st.binary(min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02x}" for x in bytes([b[0] & 0xFE]) + b[1:]))
# Built once: constructing strategies (from_regex especially) per example would dominate the run time.
OFFSET = st.integers(0, 2**16)  # an address of the subnet: network address + offset % size
HOSTILE_ADDRESS = st.one_of(addresses(), any_value())
KERNEL_ID = _usually(st.from_regex(r"[0-9a-f]{1,8}", fullmatch=True), _maybe(nasty_text(max_size=10)))
SPEC_FIELDS = {
    "cidr_bad": _usually(st.none(), _maybe(cidrs())),
    "gateway": _usually(st.one_of(st.none(), OFFSET), HOSTILE_ADDRESS),
    "dhcp": _usually(OFFSET, HOSTILE_ADDRESS),
    "dns": _usually(st.lists(st.ip_addresses(v=4), max_size=3), _maybe(dns_lists())),
    "domain": _usually(st.one_of(st.none(), st.lists(LABEL, min_size=1, max_size=3).map(".".join)),
                       _maybe(domains())),
    "lease": _usually(st.integers(120, 2**31 - 1), _maybe(lease_times())),
    "enable": st.booleans(),
    "tag": _usually(st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True), _maybe(nasty_text(max_size=10))),
    "kernel_id": KERNEL_ID,
    "reservations": st.lists(st.tuples(_usually(UNICAST_MAC, _maybe(macs())),
                                       _usually(st.one_of(st.none(), LABEL), _maybe(nasty_text())),
                                       _usually(st.one_of(st.none(), OFFSET), HOSTILE_ADDRESS)), max_size=4),
}


def _in(net, value):
    """Offsets (ints) become addresses of ``net``; anything else is passed through as the hostile value."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(net.network_address + value % net.num_addresses)
    return value


@pure(2000)
@given(cidr=private_cidrs(), f=st.fixed_dictionaries(SPEC_FIELDS))
def test_host_specs_refuse_with_host_input_error_and_render_exactly(cidr, f):
    net = ipaddress.ip_network(cidr)
    try:
        subnet = SubnetSpec(
            cidr=cidr if f["cidr_bad"] is None else f["cidr_bad"], gateway=_in(net, f["gateway"]),
            dhcp_address=_in(net, f["dhcp"]),
            dns_servers=tuple(str(x) for x in f["dns"]) if isinstance(f["dns"], list) else f["dns"],
            domain=f["domain"], lease_seconds=f["lease"], enable_dhcp=f["enable"], tag=f["tag"])
        built = [ReservationSpec(mac=m, hostname=h, ip=_in(net, i)) for m, h, i in f["reservations"]]
        spec = NetworkSpec(kernel_id=f["kernel_id"], subnets=(subnet,), reservations=tuple(built))
    except HostInputError:
        record("hostspecs", examples=1, refused=1)
        return
    offer_to_dnsmasq(spec, f)
    hosts = file_lines(dnsmasq.render_hosts(spec))
    assert hosts == [[r.mac, *([str(r.ip)] if r.ip is not None else []), *([r.hostname] if r.hostname else [])]
                     for r in spec.reservations]
    opts = file_lines(dnsmasq.render_opts(spec))
    assert opts == expected_opts([
        {"tag": s.tag, "gateway": str(s.gateway) if s.gateway else None, "dns": [str(x) for x in s.dns_servers],
         "dhcp": str(s.dhcp_address), "domain": s.domain} for s in spec.dhcp_subnets])
    record("hostspecs", examples=1, accepted=1, dnsmasq_lines=len(hosts) + len(opts))


@pure(800)
@given(kernel_id=KERNEL_ID, net_id=KERNEL_ID, mac=_usually(macs(), _maybe(macs())),
       hostname=_usually(LABEL, _maybe(nasty_text())))
def test_instance_spec_refuses_with_host_input_error(kernel_id, net_id, mac, hostname):
    try:
        spec = InstanceSpec(kernel_id=kernel_id, network_kernel_id=net_id, mac=mac, hostname=hostname)
    except HostInputError:
        record("hostspecs.instance", examples=1, refused=1)
        return
    assert hv.hostname(spec.hostname) == hostname and hv.mac(spec.mac) == spec.mac
    record("hostspecs.instance", examples=1, accepted=1)


@pure(1500)
@given(cidr=ipv6_cidrs(), ra_mode=ipv6_modes(), address_mode=ipv6_modes(),
       dns=st.one_of(st.just([]), st.lists(st.ip_addresses(v=6).map(str), max_size=3), dns_lists("2001:db8::/64")),
       mac=UNICAST_MAC, hostname=LABEL, offset=OFFSET, same=st.booleans())
def test_ipv6_modes_agree_across_layers_and_render_exactly(cidr, ra_mode, address_mode, dns, mac, hostname, offset,
                                                           same):
    """What the Django validators accept as an IPv6 subnet the host specs accept unchanged, and the rendered
    dnsmasq range, options and ``[addr]`` reservation carry exactly those values; what they refuse never
    reaches a spec."""
    ra_mode = address_mode if same else ra_mode  # valid pairs often enough to exercise the rendering
    try:
        net = validators.validate_subnet_cidr(cidr)
        if net.version != 6 or not all(isinstance(m, str) for m in (ra_mode, address_mode)):
            raise ValidationError("not an IPv6 case")
        validators.validate_ipv6_modes(net, ra_mode, address_mode)
        servers = validators.validate_dns_servers(dns, 6)
    except ValidationError:
        record("validators.ipv6", examples=1, refused=1)
        return
    ip6 = net.network_address + 3 + offset % (net.num_addresses - 3)
    subnet = SubnetSpec(cidr=str(net), gateway=str(net[1]), dhcp_address=str(net[2]), dns_servers=tuple(servers),
                        tag="s6", ipv6_ra_mode=ra_mode or None, ipv6_address_mode=address_mode)
    spec = NetworkSpec("f6", (subnet,), (ReservationSpec(mac, hostname, str(ip6)),))
    assert file_lines(dnsmasq.render_hosts(spec)) == [[mac, f"[{ip6}]", hostname]]
    assert file_lines(dnsmasq.render_opts(spec)) == [["tag:s6", "option6:dns-server",
                                                      *(f"[{x}]" for x in (servers or [str(net[2])]))]]
    argv = real_argv(spec)
    ranges = [a for a in argv if a.startswith("--dhcp-range=")]
    mode = {"slaac": "ra-only", "dhcpv6-stateless": "ra-stateless", "dhcpv6-stateful": "static"}
    if not ra_mode and address_mode == "slaac":
        assert ranges == []
    else:
        kind = mode[ra_mode] if ra_mode else "static"
        assert ranges == [f"--dhcp-range=set:s6,{net.network_address},{kind},{net.prefixlen},86400"]
    assert ("--enable-ra" in argv) == bool(ra_mode)
    record("validators.ipv6", examples=1, accepted=1)


# --- services against the database ------------------------------------------------------------------------

SUBNET_FIELDS = {
    "gateway": st.one_of(st.just(services.AUTO), st.none(), addresses()),
    "dhcp_address": st.one_of(st.none(), addresses()),
    "allocation_pools": pools(),
    "dns_nameservers": dns_lists(),
    "domain_name": domains(),
    "lease_seconds": lease_times(),
    "enable_dhcp": st.booleans(),
    "name": nasty_text(),
}


def subnet_kwargs(cidr=None):
    fields = st.fixed_dictionaries({}, optional=SUBNET_FIELDS)
    if cidr is None:
        return fields
    return st.tuples(fields, st.one_of(cidrs(), st.just(cidr))).map(lambda t: {**t[0], "cidr": t[1]})


@pytest.fixture
def fuzz_world(db, tenant_factory, member_factory):
    """A tenant with room for everything, one network (10.20.0.0/24 + domain) and one instance."""
    tenant = tenant_factory(name="Fuzz", slug="fuzz", quota_networks=10**6, quota_subnets=10**6,
                            quota_instances=10**6)
    admin = member_factory(tenant, role=Role.ADMIN, username="fuzz-admin")
    network = services.network_create(tenant=tenant, name="fuzz-net",
                                      subnet={"cidr": "10.20.0.0/24", "domain_name": "fuzz.internal"})
    subnet = network.subnets.get()
    instance = services.instance_create(network=network, hostname="vm-1")
    return {"tenant": tenant, "admin": admin, "network": network, "subnet": subnet, "instance": instance}


OPS = ["network_create", "subnet_create", "subnet_update", "instance_create", "instance_update", "network_update"]


def _op_args(data, world):
    op = data.draw(st.sampled_from(OPS), label="op")
    if op == "network_create":
        subnet = data.draw(st.one_of(st.none(), subnet_kwargs(cidr="10.30.0.0/24")), label="subnet")
        return op, {"tenant": world["tenant"], "name": data.draw(nasty_text(), label="name"), "subnet": subnet}
    if op == "subnet_create":
        return op, {"network": world["network"], **data.draw(subnet_kwargs(cidr="10.20.1.0/24"), label="kw")}
    if op == "subnet_update":
        return op, {"subnet": world["subnet"], **data.draw(subnet_kwargs(), label="changes")}
    if op == "instance_create":
        return op, {"network": world["network"], "hostname": data.draw(nasty_text(), label="hostname"),
                    "ip_address": data.draw(st.one_of(st.none(), addresses()), label="ip")}
    if op == "instance_update":
        return op, {"instance": world["instance"], "ip_address": data.draw(st.one_of(st.none(), addresses()))}
    return op, {"network": world["network"], "name": data.draw(nasty_text(), label="name")}


def assert_domain_lowercased(op: str, kwargs: dict, result: object) -> None:
    """The services' documented normalisation: the domain as typed, lowercased — and only ASCII gets that far
    (``"\u212a".lower()`` is ``"k"``: a Kelvin sign must be refused, not turned into a letter)."""
    given = (kwargs.get("subnet") or {}).get("domain_name") if op == "network_create" else kwargs.get("domain_name")
    if given is None or op not in ("network_create", "subnet_create", "subnet_update"):
        return
    subnet = result.subnets.get() if isinstance(result, Network) else result
    subnet.refresh_from_db()
    assert given.isascii(), f"accepted a non-ASCII domain {given!r} as {subnet.domain_name!r}"
    assert subnet.domain_name == given.lower(), (given, subnet.domain_name)


@settings(max_examples=size(1000), **FUZZ)
@given(data=st.data())
def test_services_refuse_with_validation_error_and_files_stay_exact(fuzz_world, data):
    op, kwargs = _op_args(data, fuzz_world)
    with transaction.atomic():
        try:
            result = getattr(services, op)(**kwargs)
        except ValidationError:
            record(f"services.{op}", examples=1, refused=1)
            transaction.set_rollback(True)
            return
        assert_domain_lowercased(op, kwargs, result)
        network = result if isinstance(result, Network) else Network.objects.get(
            pk=getattr(result, "network_id", fuzz_world["network"].pk))
        lines = sum(assert_network_files_exact(n, kwargs) for n in {network, fuzz_world["network"]})
        record(f"services.{op}", examples=1, accepted=1, dnsmasq_lines=lines)
        transaction.set_rollback(True)
    # Rolled back: the shared objects must be reloaded so the next example starts from the saved state.
    for key in ("network", "subnet", "instance"):
        fuzz_world[key].refresh_from_db()


# --- portal forms over HTTP ----------------------------------------------------------------------------

def _form_text():
    return nasty_text(surrogates=False)


def _form_addresses():
    return addresses(surrogates=False)


SUBNET_FORM_BASE = {"lease_seconds": "3600", "enable_dhcp": "on", "domain_name": "lab.internal",
                    "dns_nameservers": "9.9.9.9", "gateway": "", "dhcp_address": "", "allocation_pools": ""}
SUBNET_FORM_HOSTILE = {
    "name": _form_text(), "gateway": _form_addresses(), "dhcp_address": _form_addresses(),
    "allocation_pools": st.one_of(_form_text(), st.lists(st.tuples(_form_addresses(), _form_addresses()).map(
        "-".join), max_size=3).map("\n".join)),
    "dns_nameservers": st.one_of(_form_text(), st.lists(_form_addresses(), max_size=4).map(", ".join)),
    "domain_name": domains(surrogates=False), "lease_seconds": st.one_of(lease_times().map(str), _form_text()),
    "enable_dhcp": st.sampled_from(["on", "", "off", "\x00"]),
}
# form → (url, a valid payload, hostile values for any subset of its fields)
FORM_POSTS = {
    "network-create": lambda w: ("/networks/new/", {"name": "net-x", "cidr": "10.31.0.0/24", **SUBNET_FORM_BASE},
                                 {"name": _form_text(), "cidr": cidrs(surrogates=False), **SUBNET_FORM_HOSTILE}),
    "subnet-create": lambda w: (f"/networks/{w['network'].pk}/subnets/new/",
                                {"cidr": "10.20.2.0/24", **SUBNET_FORM_BASE},
                                {"cidr": cidrs(surrogates=False), **SUBNET_FORM_HOSTILE}),
    "subnet-edit": lambda w: (f"/subnets/{w['subnet'].pk}/edit/", dict(SUBNET_FORM_BASE), SUBNET_FORM_HOSTILE),
    "instance-create": lambda w: (f"/networks/{w['network'].pk}/instances/new/", {"hostname": "vm-x"},
                                  {"hostname": _form_text(), "ip_address": _form_addresses(),
                                   "subnet": st.one_of(_form_text(), st.just(str(w["subnet"].pk)))}),
    "instance-edit": lambda w: (f"/instances/{w['instance'].pk}/edit/", {"ip_address": "10.20.0.50"},
                                {"ip_address": _form_addresses()}),
    "network-edit": lambda w: (f"/networks/{w['network'].pk}/edit/", {"name": "renamed"}, {"name": _form_text()}),
    "member-add": lambda w: ("/tenants/fuzz/members/", {"username": "fuzz-admin", "role": "admin"},
                             {"username": _form_text(), "role": st.one_of(_form_text(), st.just("member"))}),
    "member-role": lambda w: (f"/tenants/fuzz/members/{w['membership'].pk}/role/", {"role": "admin"},
                              {"role": _form_text()}),
    "token-create": lambda w: ("/tokens/", {"name": "ci"}, {"name": _form_text()}),
}


def _submit_rolled_back(world, figure: str, payload, send, is_accepted) -> None:
    """Send one fuzzed request in a transaction that is rolled back afterwards: never a 5xx, and when it was accepted
    every network's dnsmasq files say exactly what the payload asked for (``assert_network_files_exact``)."""
    with transaction.atomic():
        response = send()
        assert response.status_code < 500, (figure, payload, response.content[:500])
        accepted = is_accepted(response)
        if accepted:
            for network in Network.objects.filter(tenant=world["tenant"]):
                assert_network_files_exact(network, payload)
        transaction.set_rollback(True)
    record(figure, examples=1, accepted=int(accepted), errors=int(response.status_code >= 500))
    for key in ("network", "subnet", "instance"):
        world[key].refresh_from_db()


@settings(max_examples=size(400), **FUZZ)
@given(data=st.data())
def test_portal_forms_never_500_and_files_stay_exact(fuzz_world, data):
    world = fuzz_world
    world.setdefault("membership", world["tenant"].memberships.get(user=world["admin"]))
    client = world.get("client")
    if client is None:
        client = world["client"] = Client()
        client.force_login(world["admin"])
    form = data.draw(st.sampled_from(sorted(FORM_POSTS)), label="form")
    url, base, hostile = FORM_POSTS[form](world)
    # A valid form with any subset of its fields replaced by hostile values, and sometimes some left out.
    payload = {**base, **data.draw(st.fixed_dictionaries({}, optional=hostile), label="hostile")}
    for key in data.draw(st.lists(st.sampled_from(sorted(payload)), max_size=2), label="dropped"):
        payload.pop(key, None)
    _submit_rolled_back(world, f"forms.{form}", payload, lambda: client.post(url, payload),
                        lambda r: r.status_code == 302 or (form == "token-create" and r.status_code == 200
                                                           and b"nd_" in r.content))


# --- API payloads ---------------------------------------------------------------------------------------

def _json_any(strategy):
    return st.one_of(strategy, strategy, any_value())


SUBNET_API_HOSTILE = {
    "name": _json_any(nasty_text()), "gateway": _json_any(st.one_of(addresses(), st.just("auto"))),
    "dhcp_address": _json_any(addresses()),
    "allocation_pools": _json_any(st.lists(st.fixed_dictionaries({"start": addresses(), "end": addresses()},
                                                                optional={"x": any_value()}), max_size=3)),
    "dns_nameservers": _json_any(dns_lists()), "domain_name": _json_any(domains()),
    "lease_seconds": _json_any(lease_times()), "enable_dhcp": _json_any(st.booleans()),
}
SUBNET_API_BASE = {"domain_name": "lab.internal", "dns_nameservers": ["9.9.9.9"], "lease_seconds": 600}

# call → (method, url, a valid payload, hostile values for any subset of its fields)
API_CALLS = {
    "network-create": lambda w: ("post", "/api/v1/networks/",
                                 {"name": "api-net", "subnet": {"cidr": "10.32.0.0/24", **SUBNET_API_BASE}},
                                 {"name": _json_any(nasty_text()),
                                  "tenant": _json_any(st.sampled_from(["fuzz", str(w["tenant"].pk), "x"])),
                                  "subnet": _json_any(st.fixed_dictionaries(
                                      {"cidr": _json_any(st.one_of(cidrs(), st.just("10.32.0.0/24")))},
                                      optional=SUBNET_API_HOSTILE))}),
    "network-rename": lambda w: ("patch", f"/api/v1/networks/{w['network'].pk}/", {"name": "renamed"},
                                 {"name": _json_any(nasty_text())}),
    "subnet-create": lambda w: ("post", "/api/v1/subnets/",
                                {"network": w["network"].pk, "cidr": "10.20.3.0/24", **SUBNET_API_BASE},
                                {"cidr": _json_any(cidrs()), "network": any_value(), **SUBNET_API_HOSTILE}),
    "subnet-update": lambda w: ("patch", f"/api/v1/subnets/{w['subnet'].pk}/", dict(SUBNET_API_BASE),
                                {"cidr": _json_any(cidrs()), **SUBNET_API_HOSTILE}),
    "instance-create": lambda w: ("post", "/api/v1/instances/", {"network": w["network"].pk, "hostname": "vm-x"},
                                  {"network": any_value(), "hostname": _json_any(nasty_text()),
                                   "ip_address": _json_any(addresses()), "subnet": _json_any(st.just(w["subnet"].pk))}),
    "instance-update": lambda w: ("put", f"/api/v1/instances/{w['instance'].pk}/", {"ip_address": "10.20.0.60"},
                                  {"ip_address": _json_any(addresses())}),
}


@settings(max_examples=size(400), **FUZZ)
@given(data=st.data())
def test_api_payloads_never_500_and_files_stay_exact(fuzz_world, data):
    from api import services as token_services

    world = fuzz_world
    client = world.get("api")
    if client is None:
        _, secret = token_services.api_token_create(user=world["admin"], name="fuzz")
        client = world["api"] = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    call = data.draw(st.sampled_from([*sorted(API_CALLS), "raw-body"]), label="call")
    if call == "raw-body":  # not an object at all
        method, url = "post", "/api/v1/networks/"
        payload = data.draw(st.one_of(any_value(), nasty_text(), st.lists(nasty_text(), max_size=3)), label="body")
    else:
        method, url, base, hostile = API_CALLS[call](world)
        payload = {**base, **data.draw(st.fixed_dictionaries({}, optional=hostile), label="hostile")}
        for key in data.draw(st.lists(st.sampled_from(sorted(payload)), max_size=2), label="dropped"):
            payload.pop(key, None)
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a hostile JSON client would send them.
    body = json.dumps(payload, ensure_ascii=True)
    _submit_rolled_back(world, f"api.{call}", payload,
                        lambda: getattr(client, method)(url, body, content_type="application/json"),
                        lambda r: r.status_code in (200, 201, 202))


# --- routers, floating IPs and external networks over the API -------------------------------------------

IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d{1,2})?\b")


@pytest.fixture
def router_world(fuzz_world):
    """``fuzz_world`` with an external network, a router in front of its subnet, a second subnet to attach and an
    allocated floating IP, so every router/FIP endpoint has something valid to start from."""
    from tenants import routers
    from tenants.models import Tenant

    world = fuzz_world
    Tenant.objects.filter(pk=world["tenant"].pk).update(quota_routers=10**6, quota_floating_ips=10**6)
    world["tenant"].refresh_from_db()
    operators = services.tenant_create(name="Fuzz operators", slug="fuzz-ops")
    world["external"] = routers.external_network_create(
        tenant=operators, name="fuzz-public",
        subnet={"cidr": "203.0.113.0/24", "gateway": "203.0.113.1", "enable_dhcp": False})
    world["router"] = routers.router_create(tenant=world["tenant"], name="fuzz-r", external_network=world["external"])
    routers.router_interface_add(router=world["router"], subnet=world["subnet"])
    world["subnet2"] = services.subnet_create(network=world["network"], cidr="10.20.9.0/24")
    world["fip"] = routers.floating_ip_allocate(tenant=world["tenant"], external_network=world["external"])
    return world


def _ids(*known):
    """A hostile id: one of ``known`` (valid or another kind's), a non-existent one, or any JSON value."""
    return _json_any(st.sampled_from([*known, 0, -1, 10**12, "1", "fuzz"]))


ROUTER_API_CALLS = {
    "router-create": lambda w: ("post", "/api/v1/routers/", {"name": "r-api", "external_network": w["external"].pk},
                                {"name": _json_any(nasty_text()),
                                 "external_network": _ids(w["external"].pk, w["network"].pk, None),
                                 "tenant": _json_any(st.sampled_from(["fuzz", str(w["tenant"].pk), "fuzz-ops"]))}),
    "router-update": lambda w: ("patch", f"/api/v1/routers/{w['router'].pk}/", {"external_network": None},
                                {"external_network": _ids(w["external"].pk, w["network"].pk, None)}),
    "router-add-interface": lambda w: ("post", f"/api/v1/routers/{w['router'].pk}/add-interface/",
                                       {"subnet": w["subnet2"].pk},
                                       {"subnet": _ids(w["subnet"].pk, w["subnet2"].pk,
                                                       w["external"].subnets.get().pk)}),
    "router-remove-interface": lambda w: ("post", f"/api/v1/routers/{w['router'].pk}/remove-interface/",
                                          {"subnet": w["subnet"].pk},
                                          {"subnet": _ids(w["subnet"].pk, w["subnet2"].pk)}),
    "fip-create": lambda w: ("post", "/api/v1/floating-ips/", {"external_network": w["external"].pk},
                             {"external_network": _ids(w["external"].pk, w["network"].pk),
                              "tenant": _json_any(st.sampled_from(["fuzz", "fuzz-ops"])),
                              "address": _json_any(addresses())}),
    "fip-associate": lambda w: ("patch", f"/api/v1/floating-ips/{w['fip'].pk}/", {"instance": w["instance"].pk},
                                {"instance": _ids(w["instance"].pk, w["network"].pk, None),
                                 "address": _json_any(addresses())}),
}


def assert_rules_come_from_rows(world, payload) -> int:
    """Every router of the tenant renders (the job's spec building never raises on accepted rows), and its NAT
    table holds only addresses the database holds for it, and no text of the payload: nothing raw reaches a rule."""
    from tenants.host import nft
    from tenants.host.kinds import router as router_kind
    from tenants.models import Router
    from tenants.router_convergence import load_router

    names = hostspecs.driver().names
    rules = 0
    for pk in Router.objects.filter(tenant=world["tenant"]).values_list("pk", flat=True):
        row = load_router(pk)
        text = nft.render(router_kind.table(names, hostspecs.router_spec(row)))
        known = {row.external_ip, *(f.address for f in row.gateway_floating_ips),
                 *(f.instance.ip_address for f in row.gateway_floating_ips if f.instance)}
        for i in row.interfaces.all():
            known |= {i.subnet.gateway, i.subnet.cidr}
        assert set(IPV4.findall(text)) <= known, (text, known)
        raw = [v for v in _strings(payload) if len(v) >= 4 and not IPV4.fullmatch(v)]
        assert not [v for v in raw if v in text], (raw, text)
        rules += text.count("\n")
    return rules


@settings(max_examples=size(400), **FUZZ)
@given(data=st.data())
def test_router_api_payloads_get_clear_400s_and_rules_come_from_rows(router_world, data):
    """Every router/FIP/external-network input over the API: accepted, or a 4xx whose JSON body says why (a clear
    400 for bad values, 404 for someone else's or missing ids) — never a 5xx; accepted ones render rules only from
    database values. External networks are read-only to tenants: writes there are refused outright."""
    from api import services as token_services

    world = router_world
    client = world.get("api")
    if client is None:
        _, secret = token_services.api_token_create(user=world["admin"], name="fuzz")
        client = world["api"] = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    call = data.draw(st.sampled_from([*sorted(ROUTER_API_CALLS), "external-network-create"]), label="call")
    if call == "external-network-create":
        method, url = "post", "/api/v1/external-networks/"
        payload = data.draw(st.fixed_dictionaries({}, optional={
            "name": _json_any(nasty_text()), "subnet": _json_any(st.fixed_dictionaries({"cidr": cidrs()}))}))
    else:
        method, url, base, hostile = ROUTER_API_CALLS[call](world)
        payload = {**base, **data.draw(st.fixed_dictionaries({}, optional=hostile), label="hostile")}
        for key in data.draw(st.lists(st.sampled_from(sorted(payload)), max_size=1), label="dropped"):
            payload.pop(key, None)
    body = json.dumps(payload, ensure_ascii=True)
    with transaction.atomic():
        response = getattr(client, method)(url, body, content_type="application/json")
        assert response.status_code < 500, (call, payload, response.content[:500])
        accepted = response.status_code in (200, 201, 202)
        if call == "external-network-create":
            assert response.status_code == 405, (payload, response.status_code)
        elif not accepted:
            assert response.status_code in (400, 404), (call, payload, response.status_code, response.content[:300])
            assert response.json(), (call, payload)  # says why
        rules = assert_rules_come_from_rows(world, payload) if accepted else 0
        transaction.set_rollback(True)
    record(f"api.{call}", examples=1, accepted=int(accepted), errors=int(response.status_code >= 500),
           nft_lines=rules)
    for key in ("network", "subnet", "instance", "router", "fip", "subnet2", "external"):
        world[key].refresh_from_db()


# --- jobs: spec building for fuzzed rows -----------------------------------------------------------------

@settings(max_examples=size(150), **FUZZ)
@given(cidr=private_cidrs(), hostnames=st.lists(LABEL, min_size=1, max_size=4, unique=True),
       domain=st.one_of(st.just(""), st.lists(LABEL, min_size=1, max_size=3).map(".".join)), enable=st.booleans(),
       no_gateway=st.booleans())
def test_jobs_build_specs_for_every_valid_row(fuzz_world, cidr, hostnames, domain, enable, no_gateway):
    """Valid rows of every shape: the realise jobs' spec building (network_spec, instance_spec, argv) never raises."""
    with transaction.atomic():
        network = services.network_create(tenant=fuzz_world["tenant"], name="jobs-net", subnet={
            "cidr": cidr, "domain_name": domain, "enable_dhcp": enable, "gateway": None if no_gateway else "auto"})
        made = 0
        for hostname in hostnames:
            try:
                services.instance_create(network=network, hostname=hostname)
                made += 1
            except ValidationError:  # a /29 runs out of addresses
                break
        lines = assert_network_files_exact(network)
        transaction.set_rollback(True)
    record("jobs.specs", examples=1, instances=made, dnsmasq_lines=lines)


# --- what the fuzzing found, pinned ----------------------------------------------------------------------

@pytest.mark.parametrize("value,message", [
    (["fe80::1%x,8.8.8.8"], "remove the zone"),  # ipaddress took the comma as part of an IPv6 zone
    (["fe80::1%x\n--server=1.1.1.1"], "remove the zone"),
    (["2001:db8::53"], "not an IPv4 address"),  # dnsmasq refuses an IPv6 DHCPv4 DNS option
])
def test_dns_servers_with_zones_or_ipv6_are_refused(value, message):
    with pytest.raises(ValidationError, match=message):
        validators.validate_dns_servers(value)
    with pytest.raises(HostInputError):
        SubnetSpec(cidr="10.0.0.0/24", gateway=None, dhcp_address="10.0.0.2", dns_servers=tuple(value))


@pytest.mark.parametrize("typed,stored", [("Lab.Internal", "lab.internal"), ("LAB.INTERNAL", "lab.internal"),
                                          ("lab.internal", "lab.internal")])
def test_services_lowercase_a_mixed_case_domain(fuzz_world, typed, stored):
    subnet = services.subnet_update(subnet=fuzz_world["subnet"], domain_name=typed)
    subnet.refresh_from_db()
    assert subnet.domain_name == stored


@pytest.mark.parametrize("typed", ["\u212a.internal", "lab.\u0130nternal", "lab.internal\u200b"])
def test_services_refuse_a_domain_that_lowercases_into_ascii(fuzz_world, typed):
    """str.lower() maps the Kelvin sign to "k" (and İ to "i" + a combining dot): lowercasing must not launder
    a look-alike into a valid name."""
    with pytest.raises(ValidationError):
        services.subnet_update(subnet=fuzz_world["subnet"], domain_name=typed)


def test_a_trailing_dot_domain_is_refused_before_it_can_break_the_realise_job():
    with pytest.raises(ValidationError, match="Remove the trailing dot: 'lab.internal'"):
        validators.validate_domain_name("lab.internal.")


@pytest.mark.parametrize("dns", [None, "9.9.9.9", 5])
def test_specs_refuse_non_sequences_with_host_input_error(dns):
    with pytest.raises(HostInputError):
        SubnetSpec(cidr="10.0.0.0/24", gateway=None, dhcp_address="10.0.0.2", dns_servers=dns)


# --- the real dnsmasq ------------------------------------------------------------------------------------

DNSMASQ_COMPLAINT = re.compile(r"\b(bad|error|failed|illegal|unknown|cannot|invalid)\b", re.IGNORECASE)
# --log-dhcp lines of a DHCP exchange ("dnsmasq-dhcp[7]: 1234 client provides name: bad") quote client input.
DHCP_TRANSACTION = re.compile(r"dnsmasq-dhcp\[\d+\]: \d+ ")
LEASE_CHECKS = 3  # cases whose first reservation is also asked for by a real DHCP client (slow: ~0.2 s each)


def _log_since(path: Path, offset: int) -> str:
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read()


def _wait_reread(path: Path, offset: int, *files: Path) -> str:
    """dnsmasq's log after ``offset`` once it says it read every one of ``files`` (on start-up or SIGHUP)."""
    deadline = time.monotonic() + 30
    while True:
        text = _log_since(path, offset)
        if all(f"read {f}" in text for f in files) or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


@pytest.mark.host
def test_the_real_dnsmasq_reads_exactly_the_rendered_entries(host_clean, fuzz_world):
    """The model above (``file_lines``) is checked against dnsmasq 2.90 itself, on the configurations the fuzz
    accepted: every one whose input held a dangerous character, and a sample of the rest.

    ``dnsmasq --test`` parses the argv only (it never opens --dhcp-hostsfile/--dhcp-optsfile: a file of garbage
    passes), so it checks the argv, and a real dnsmasq in this run's namespace reads the files: realised by the
    driver as a job would (a changed argv restarts it, changed files are SIGHUPed), its log must show both files
    read with no complaint, one "using only locally-known addresses for D" per ``--local=/D/`` and nothing
    else; for a few cases a real DHCP client with a reserved MAC must get exactly the reserved address.
    """
    d = host_clean
    offer_to_dnsmasq(hostspecs.network_spec(fuzz_world["network"]), "fuzz.internal/")  # a run of this test alone
    cases = list(REAL_DNSMASQ_CASES.values())
    n = d.names
    hosts, opts, log = n.hosts(REAL_KERNEL_ID), n.opts(REAL_KERNEL_ID), n.dnsmasq_log(REAL_KERNEL_ID)
    failures: list[str] = []
    leased = 0
    try:
        for spec, dangerous in cases:
            argv = real_argv(spec)
            checked = subprocess.run([argv[0], "--test", *argv[1:]], capture_output=True, text=True,
                                     env={"LANG": "C", "PATH": "/usr/sbin:/usr/bin"}, check=False)
            if checked.returncode != 0:
                failures.append(f"dnsmasq --test refused {argv}: {checked.stderr.strip()}")
                continue
            offset = log.stat().st_size if log.exists() else 0
            same_files = all(f.exists() and f.read_text() == text for f, text in (
                (hosts, dnsmasq.render_hosts(spec)), (opts, dnsmasq.render_opts(spec))))
            if not d.refresh_network(spec):
                d.ensure_network(spec)  # a new argv: dnsmasq restarted
            elif same_files:
                os.kill(d.dnsmasq_pid(REAL_KERNEL_ID), signal.SIGHUP)  # nothing changed: make it read them anyway
            text = _wait_reread(log, offset, hosts, opts)
            where = f"{'dangerous' if dangerous else 'ordinary'} case {hosts.read_text()!r} {opts.read_text()!r}"
            if not all(f"read {f}" in text for f in (hosts, opts)):
                failures.append(f"{where}: dnsmasq did not read its files:\n{text}")
            if complaints := [line for line in text.splitlines()
                              if DNSMASQ_COMPLAINT.search(line) and not DHCP_TRANSACTION.search(line)]:
                failures.append(f"{where}: dnsmasq complained: {complaints}")
            started = "started, version" in text
            local = re.findall(r"using only locally-known addresses for (\S+)", text)
            wanted = sorted({s.domain for s in spec.dhcp_subnets if s.domain})
            if started and sorted(local) != wanted:
                failures.append(f"{where}: --local domains {sorted(local)} != {wanted}")
            unusable = {a for s in spec.dhcp_subnets
                        for a in (s.cidr.network_address, s.cidr.broadcast_address, s.gateway, s.dhcp_address)}
            reserved = [r for r in spec.reservations if r.ip is not None and r.ip not in unusable]
            if reserved and leased < LEASE_CHECKS:
                leased += 1
                r = reserved[0]
                instance = InstanceSpec(kernel_id=f"f022{leased:04x}", network_kernel_id=REAL_KERNEL_ID, mac=r.mac,
                                        hostname=r.hostname or "probe")
                try:
                    got = d.ensure_instance(instance).lease
                    if got is None or str(got.ip) != str(r.ip):
                        failures.append(f"{where}: {r.mac} was given {got}, reserved {r.ip}")
                finally:
                    d.remove_instance(instance.kernel_id)
    finally:
        d.remove_networks([REAL_KERNEL_ID])
    dangerous = sum(1 for _, bad in cases if bad)
    record("dnsmasq.real", examples=len(cases), dangerous=dangerous, leases=leased)
    assert not failures, "\n".join(failures[:20])
    assert leased, "no case had a reservation to lease"
