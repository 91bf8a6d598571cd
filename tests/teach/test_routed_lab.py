"""The routed-overlap lab on the real kernel: two learner tenants on 192.168.1.0/24, each behind its own router
with its gateway on the lab's simulated-upstream external network (203.0.113.0/24, TEST-NET-3, no route out).
Both instances reach the upstream, it sees two different sources, each router's conntrack holds only its own
tenant's flows — and the page's "what to notice" says exactly that, read from the kernel."""

from __future__ import annotations

import subprocess

import pytest
from django.urls import reverse
from teach_helpers import ask_upstream

from teach import selectors
from teach import services as lab_services
from teach.models import Classroom, Lab, LabKind
from tenants.choices import ObjectStatus
from tenants.hostspecs import names
from tenants.models import Instance, Network, Router, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


@pytest.fixture
def classroom(user_factory):
    """A class with labs on and two learners (not staff)."""
    c = Classroom.objects.create(name="net102", labs_enabled=True, lab_quota=1)
    for name in ("ann", "bob"):
        c.learners.add(user_factory(username=name))
    return c


def _namespaces(lab: Lab) -> list[str]:
    n = names()
    out = []
    for network in Network.objects.filter(tenant__labs=lab):
        out += [n.dhcp_ns(network.kernel_id), n.seg_ns(network.kernel_id)]
        out += [n.inst_ns(i.kernel_id) for i in network.instances.all()]
        if network.simulated_upstream:
            out.append(n.upstream_ns(network.kernel_id))
    out += [n.router_ns(r.kernel_id) for r in Router.objects.filter(tenant__labs=lab)]
    return out


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout


def test_routed_lab_is_built_checked_from_the_kernel_and_torn_down(client, host_clean, agent_queue, agent_thread,
                                                                   classroom):
    ann, bob = classroom.learners.get(username="ann"), classroom.learners.get(username="bob")
    client.force_login(ann)
    response = client.post(reverse("teach:lab-start"), {"kind": LabKind.ROUTED})
    lab = Lab.objects.get()
    assert response["Location"] == reverse("teach:lab-detail", args=[lab.pk]) and lab.kind == LabKind.ROUTED
    assert [t.slug for t in lab.tenants.order_by("slug")] == [f"lab{lab.pk}-{s}" for s in ("a", "b", "up")]

    def built() -> bool:
        sides = selectors.lab_sides(lab)
        return len(sides) == 2 and all(
            s.instance is not None and s.instance.status == ObjectStatus.ACTIVE and s.router is not None
            and s.router.status == ObjectStatus.ACTIVE for s in sides)

    assert settle(built, timeout=60), list(Instance.objects.values_list("hostname", "status", "status_reason"))
    sides = selectors.lab_sides(lab)
    (a, b) = sides
    assert a.instance.ip_address == b.instance.ip_address  # the same inside address
    assert a.router.external_ip != b.router.external_ip
    # The kernel itself, independently of the page: each instance is seen upstream as its own router.
    n = names()
    for side in sides:
        assert ask_upstream(n.inst_ns(side.instance.kernel_id), selectors.LAB_UPSTREAM) == side.router.external_ip

    page = client.get(reverse("teach:lab-detail", args=[lab.pk]))
    assert page.status_code == 200 and "routed overlapping IPs" in page.content.decode()
    notice = client.get(reverse("teach:lab-notice", args=[lab.pk])).json()
    assert notice["error"] == "", notice
    facts = notice["facts"]
    for side in sides:
        slug = side.tenant.slug
        assert f"which saw it as {side.router.external_ip}" in facts[f"reached:{slug}"]
        assert f"its own {side.router.external_ip}" in facts[f"own_flows:{slug}"]
    assert a.router.external_ip in facts["different_sources"] and b.router.external_ip in facts["different_sources"]
    assert "same_inside" in facts

    # Another learner sees none of it: the lab, its notice, its routers.
    client.force_login(bob)
    for name in ("teach:lab-detail", "teach:lab-notice"):
        assert client.get(reverse(name, args=[lab.pk])).status_code == 404
    for side in sides:
        assert client.get(reverse("teach:router-inspect", args=[side.router.pk])).status_code == 404

    listed = _netns_list()
    made = [ns for ns in _namespaces(lab) if ns in listed]  # the external network has no DHCP namespace
    must = [n.router_ns(s.router.kernel_id) for s in sides] + [n.inst_ns(s.instance.kernel_id) for s in sides]
    upstream = Network.objects.get(tenant__labs=lab, simulated_upstream=True)
    must.append(n.upstream_ns(upstream.kernel_id))
    assert all(ns in made for ns in must), (must, listed)
    tenant_ids = list(lab.tenants.values_list("pk", flat=True))
    lab_services.lab_end(lab=lab, actor=ann)
    assert settle(lambda: not Tenant.objects.filter(pk__in=tenant_ids).exists(), timeout=60), list(
        Network.objects.values_list("name", "status", "status_reason"))
    listed = _netns_list()
    assert not [ns for ns in made if ns in listed], listed
