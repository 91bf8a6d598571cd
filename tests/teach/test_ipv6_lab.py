"""The three-modes IPv6 lab on the real kernel: a non-staff learner's lab gets one isolated IPv6-only network per
mode (SLAAC, DHCPv6-stateless, DHCPv6-stateful) with one instance each; what the page notices is read from the
instances (RA flags solicited off the wire, addresses, dhcpcd, lease rows) and holds for every mode; a second
learner's lab on the same prefixes is invisible to the first; ``lab_end`` removes it from host and database."""

from __future__ import annotations

import ipaddress
import subprocess

import pytest
from django.urls import reverse

from teach import ipv6_lab, selectors
from teach import services as lab_services
from teach.models import Classroom, Lab, LabKind
from tenants.choices import ObjectStatus
from tenants.hostspecs import names
from tenants.models import Instance, Network, Tenant
from tenants.testing import settle
from tenants.validators import eui64_address

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.usefixtures("fast_ipv6")]
MODES = [m for m, _n, _c in ipv6_lab.MODES]


@pytest.fixture
def classroom(user_factory):
    """A class with labs on and two learners (not staff)."""
    c = Classroom.objects.create(name="net106", labs_enabled=True, lab_quota=1)
    for name in ("ann", "bob"):
        c.learners.add(user_factory(username=name))
    return c


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout


def _addresses(ns: str) -> str:
    return subprocess.run(["ip", "-n", ns, "-6", "addr", "show"], check=True, capture_output=True, text=True).stdout


def _built(lab: Lab) -> bool:
    modes = selectors.lab_ipv6_modes(lab)
    return len(modes) == 3 and all(m.instance is not None and m.instance.status == ObjectStatus.ACTIVE
                                   for m in modes)


def _namespaces(lab: Lab) -> list[str]:
    n, out = names(), []
    for network in Network.objects.filter(tenant__labs=lab):
        out += [n.dhcp_ns(network.kernel_id), n.seg_ns(network.kernel_id)]
        out += [n.inst_ns(i.kernel_id) for i in network.instances.all()]
    return out


def _expected_keys() -> set[str]:
    return ({f"{k}:{m}" for k in ("ra", "client", "link_local") for m in MODES}
            | {"eui64:slaac", "eui64:dhcpv6-stateless", "dhcpv6:dhcpv6-stateful"})


def test_ipv6_lab_shows_each_mode_from_the_kernel_is_private_and_torn_down(client, host_clean, agent_queue,
                                                                           agent_thread, classroom):
    ann, bob = classroom.learners.get(username="ann"), classroom.learners.get(username="bob")
    assert not ann.is_staff and not ann.is_superuser
    labs = {}
    for learner in (ann, bob):
        client.force_login(learner)
        response = client.post(reverse("teach:lab-start"), {"kind": LabKind.IPV6})
        labs[learner.username] = lab = Lab.objects.get(learner=learner)
        assert response["Location"] == reverse("teach:lab-detail", args=[lab.pk]) and lab.kind == LabKind.IPV6
    mine, theirs = labs["ann"], labs["bob"]
    for lab in (mine, theirs):
        assert settle(lambda lab=lab: _built(lab), timeout=90), list(
            Instance.objects.values_list("hostname", "status", "status_reason"))
    modes = selectors.lab_ipv6_modes(mine)
    assert [m.network.subnets.get().cidr for m in modes] == [c for _m, _n, c in ipv6_lab.MODES]

    # The kernel itself, independently of the page: SLAAC's instance holds the EUI-64 of its MAC, the stateful
    # one the address the database reserved, as a /128.
    n = names()
    slaac, _stateless, stateful = modes
    want = eui64_address(ipaddress.ip_network(slaac.network.subnets.get().cidr), slaac.instance.mac_address)
    assert settle(lambda: f"{want}/64" in _addresses(n.inst_ns(slaac.instance.kernel_id)), timeout=40)
    assert settle(lambda: f"{stateful.instance.ip_address}/128" in _addresses(n.inst_ns(stateful.instance.kernel_id)),
                  timeout=40)

    client.force_login(ann)
    page = client.get(reverse("teach:lab-detail", args=[mine.pk])).content.decode()
    assert "three IPv6 modes" in page and all(f'data-v6-mode="{m}"' in page for m in MODES)
    url = reverse("teach:lab-notice", args=[mine.pk])
    seen: dict = {}

    def noticed() -> bool:
        seen.update(client.get(url).json())
        return _expected_keys() <= set(seen.get("facts", {}))

    assert settle(noticed, timeout=60), seen
    facts = seen["facts"]
    assert not [k for k in facts if k.startswith("no_")], facts
    assert facts["ra:slaac"].endswith("M=0 O=0, 2001:db8:a1::/64 A=1.")
    assert facts["ra:dhcpv6-stateless"].endswith("M=0 O=1, 2001:db8:a2::/64 A=1.")
    assert facts["ra:dhcpv6-stateful"].endswith("M=1 O=1, 2001:db8:a3::/64 A=0.")
    assert f"computed {want} itself" in facts["eui64:slaac"] and slaac.instance.mac_address in facts["eui64:slaac"]
    assert f"M=1 → DHCPv6 address {stateful.instance.ip_address}" in facts["dhcpv6:dhcpv6-stateful"]
    assert "no DHCPv6 client runs" in facts["client:slaac"]
    assert "dhcpcd (pid" in facts["client:dhcpv6-stateless"] and "dhcpcd (pid" in facts["client:dhcpv6-stateful"]
    sides = {s["mode"]: s for s in seen["sides"]}
    assert sides["slaac"]["client"] is None and sides["slaac"]["leases"] == []
    assert sides["dhcpv6-stateless"]["leases"] == []
    assert sides["dhcpv6-stateful"]["leases"] == [stateful.instance.ip_address]

    # The other learner's lab, on the same prefixes, is invisible: its pages, notice, instances and API rows.
    their_instances = [m.instance for m in selectors.lab_ipv6_modes(theirs)]
    assert {i.ip_address for i in their_instances if i.network.subnets.get().ipv6_address_mode
            == "dhcpv6-stateful"} == {stateful.instance.ip_address}  # the same prefix and first address
    for name in ("teach:lab-detail", "teach:lab-notice"):
        assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
    assert client.post(reverse("teach:lab-end", args=[theirs.pk])).status_code == 404
    api = client.get("/api/v1/networks/").json()
    assert {x["id"] for x in api.get("results", api)} == set(
        Network.objects.filter(tenant__labs=mine).values_list("id", flat=True))
    for i in their_instances:
        assert client.get(f"/api/v1/instances/{i.pk}/").status_code == 404
        assert client.get(reverse("teach:instance-inspect", args=[i.pk])).status_code == 404
    assert client.get(f"/api/v1/tenants/{theirs.tenants.get().pk}/").status_code == 404

    made = {lab.pk: [ns for ns in _namespaces(lab) if ns in _netns_list()] for lab in (mine, theirs)}
    assert len(made[mine.pk]) == 9, made  # a DHCP, segment and instance namespace per mode
    tenant_ids = list(Tenant.objects.filter(labs__in=[mine, theirs]).values_list("pk", flat=True))
    lab_services.lab_end(lab=mine, actor=ann)
    lab_services.lab_end(lab=theirs, actor=bob)
    assert not Lab.objects.exists()
    assert settle(lambda: not Tenant.objects.filter(pk__in=tenant_ids).exists(), timeout=90), list(
        Network.objects.values_list("name", "status", "status_reason"))
    listed = _netns_list()
    assert not [ns for ns in made[mine.pk] + made[theirs.pk] if ns in listed], listed
