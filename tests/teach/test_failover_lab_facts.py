"""The failover lab's findings (pure): each appears only when the nodes' observations show it, and one the kernel
contradicts is written as not holding; plus the lab's start without two live DHCP nodes (no agents needed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from teach import services
from teach.failover_lab import NodeObservation, Server, Topology, facts
from teach.models import Classroom, Lab, LabKind
from tenants.choices import NodeState
from tenants.models import Node, Tenant

VNI = 4242
VTEPS = {"n1": "10.250.0.1", "n2": "10.250.0.2", "n3": "10.250.0.3"}
MAC = "02:00:00:aa:bb:cc"
IP = "10.0.0.5"
S0, S1 = "10.0.0.2", "10.0.0.3"  # rank 0 on n1, rank 1 on n2; the instance on n3


def topology() -> Topology:
    return Topology(VNI, dict(VTEPS), [Server(0, "n1", S0), Server(1, "n2", S1)], "lab-vm", MAC, IP, "n3")


def tunnel(node: str, vni: int = VNI, learned: tuple[str, ...] = ()) -> dict:
    return {"dev": "tx1a", "vni": vni, "flood": sorted(v for n, v in VTEPS.items() if n != node),
            "learned": list(learned)}


def event(at: float, kind: str, ip: str = "", server: str = "") -> dict:
    return {"at": at, "event": kind, "ip": ip, "server_id": server}


def client(server: str = S0, events: list[dict] | None = None, addresses: tuple[str, ...] = (IP,)) -> dict:
    return {"udhcpc_pid": 99, "addresses": list(addresses),
            "lease": {"ip": IP, "server_id": server, "obtained": 2.0},
            "events": events if events is not None else [event(1, "deconfig"), event(2, "bound", IP, server)]}


def nodes(*, dnsmasq=(11, 12), learned_on_n1: bool = True, cl: dict | None = None, n2_vni: int = VNI):
    return [
        NodeObservation("n1", True, tunnel("n1", learned=(MAC,) if learned_on_n1 else ()), dnsmasq[0]),
        NodeObservation("n2", True, tunnel("n2", vni=n2_vni), dnsmasq[1]),
        NodeObservation("n3", True, tunnel("n3"), None, cl if cl is not None else client()),
    ]


def test_before_the_failover_segments_learned_mac_lease_and_both_servers_are_observed():
    out = facts(topology(), nodes())
    assert {"segment:n1", "segment:n2", "segment:n3", "learned:n1", "leased", "dnsmasq:n1", "dnsmasq:n2"} == set(out)
    assert "VNI 4242" in out["segment:n1"] and "10.250.0.2 (n2), 10.250.0.3 (n3)" in out["segment:n1"]
    assert MAC in out["learned:n1"] and "n3" in out["learned:n1"]
    assert f"ACKed by {S0} — the server on n1, across the VXLAN from n3" in out["leased"]


def test_no_fact_without_its_observation():
    bare = [NodeObservation("n1", False), NodeObservation("n2", True, None, None), NodeObservation("n3", True)]
    out = facts(topology(), bare)
    assert set(out) == {"no_segment:n1", "no_segment:n2", "no_segment:n3", "dnsmasq_dead:n1", "dnsmasq_dead:n2"}
    assert "learned:n1" not in facts(topology(), nodes(learned_on_n1=False))
    assert "learned:n3" not in facts(topology(), nodes())  # the instance's own node proves nothing about the tunnel


def test_contradicted_facts_are_written_as_not_holding():
    out = facts(topology(), nodes(n2_vni=999))
    assert "segment:n2" not in out and "VNI 999" in out["no_segment:n2"]
    short = nodes()
    short[0].tunnel["flood"] = ["10.250.0.2"]  # n3's VTEP missing from n1's flood list
    assert "segment:n1" not in facts(topology(), short)
    assert "10.250.0.3" in facts(topology(), short)["no_segment:n1"]
    for bad in (client(addresses=()), client(server="10.0.0.9")):  # not on the NIC; an unknown server id
        out = facts(topology(), nodes(cl=bad))
        assert "leased" not in out and "no_leased" in out


def renewed_client(*, lost: bool = False) -> dict:
    events = [event(1, "deconfig"), event(2, "bound", IP, S0)]
    if lost:
        events.append(event(3, "deconfig"))
        events.append(event(4, "bound", IP, S1))
    else:
        events.append(event(4, "renew", IP, S1))
    return client(server=S1, events=events)


def test_after_the_failover_the_renewal_from_the_survivor_is_a_fact():
    out = facts(topology(), nodes(dnsmasq=(None, 12), cl=renewed_client()))
    assert "dnsmasq_dead:n1" in out and "dnsmasq:n2" in out
    assert out["renewed"].startswith(f"Renewed from {S1} on n2, same address {IP}: {S0} on n1 is down")
    assert "no deconfig" in out["renewed"] and "deconfigured" not in out


def test_a_deconfig_during_the_failover_contradicts_the_renewal():
    out = facts(topology(), nodes(dnsmasq=(None, 12), cl=renewed_client(lost=True)))
    assert "renewed" not in out and "deconfig" in out["deconfigured"]


def test_no_renewal_fact_while_the_first_server_still_runs_or_before_any_switch():
    assert "renewed" not in facts(topology(), nodes(cl=renewed_client()))  # n1's dnsmasq alive: no failover seen
    assert "renewed" not in facts(topology(), nodes(dnsmasq=(None, 12)))  # still the first lease from S0


# --- start without two live dhcp nodes (no agents) ---------------------------------------------------------

@pytest.fixture
def learner(user_factory, db):
    c = Classroom.objects.create(name="net103", labs_enabled=True)
    user = user_factory(username="fo-learner")
    c.learners.add(user)
    return user


def _node(name: str, vtep: str | None, *, dhcp: bool = True, age: int = 0) -> Node:
    return Node.objects.create(name=name, vtep_address=vtep, dhcp=dhcp, state=NodeState.UP,
                               heartbeat_at=timezone.now() - timedelta(seconds=age))


@pytest.mark.django_db
def test_the_failover_lab_needs_two_live_dhcp_nodes_and_says_how(learner, client, settings):
    Node.objects.all().delete()
    _node("n1", "10.250.0.1")
    _node("n2", "10.250.0.2", age=settings.NETDASH_NODE_DEAD_SECONDS + 60)  # silent: not live
    _node("n3", "10.250.0.3", dhcp=False)  # compute only
    _node("n4", None)  # no VTEP: outside the overlay
    with pytest.raises(ValidationError) as err:
        services.lab_start(user=learner, kind=LabKind.FAILOVER)
    assert err.value.code == "nodes" and "NODES=3 make run" in " ".join(err.value.messages)
    assert not Lab.objects.exists() and not Tenant.objects.exists()

    client.force_login(learner)
    page = client.get(reverse("teach:lab")).content.decode()
    assert 'id="lab-failover-unavailable"' in page and "NODES=3 make run" in page
    assert 'id="lab-start-failover"' not in page
    answer = client.post(reverse("teach:lab-start"), {"kind": "failover"}, follow=True).content.decode()
    assert "NODES=3 make run" in answer and not Lab.objects.exists()

    Node.objects.filter(name="n2").update(heartbeat_at=timezone.now())
    assert services.failover_lab_unavailable() == ""
    assert 'id="lab-start-failover"' in client.get(reverse("teach:lab")).content.decode()


@pytest.mark.django_db
def test_a_failed_server_is_served_by_nobody_until_restored():
    """The database as the source of truth: a server failed on purpose runs no dnsmasq on its node (the monitor's
    and the lease watcher's ``networks_served_by``, reconcile's and the spec's ``serves_dhcp``); the other still
    serves, and its node's segment stays (the spec keeps it, without subnets)."""
    from tenants import services as tenant_services
    from tenants.hostspecs import network_spec
    from tenants.models import DhcpServer, Network
    from tenants.scheduling import networks_served_by, serves_dhcp

    Node.objects.all().delete()
    _node("n1", "10.250.0.1")
    _node("n2", "10.250.0.2")
    network = tenant_services.network_create(tenant=Tenant.objects.create(name="T", slug="t"), name="net",
                                             subnet={"cidr": "10.0.0.0/24"})
    assert sorted(DhcpServer.objects.filter(network=network).values_list("node", flat=True)) == ["n1", "n2"]
    DhcpServer.objects.filter(network=network, node="n1").update(failed_at=timezone.now())
    loaded = Network.objects.prefetch_related("dhcp_servers", "subnets").get(pk=network.pk)
    assert not serves_dhcp(loaded, "n1") and serves_dhcp(loaded, "n2")
    assert network_spec(loaded, "n1").subnets == () and network_spec(loaded, "n2").subnets != ()
    assert list(networks_served_by("n1")) == [] and list(networks_served_by("n2")) == [network]
    DhcpServer.objects.filter(network=network).update(failed_at=None)
    loaded = Network.objects.prefetch_related("dhcp_servers", "subnets").get(pk=network.pk)
    assert serves_dhcp(loaded, "n1") and list(networks_served_by("n1")) == [network]


@pytest.mark.django_db
def test_fail_and_restore_are_posts_of_the_labs_owner_with_csrf(learner, user_factory):
    from django.test import Client

    lab = Lab.objects.create(learner=learner, kind=LabKind.FAILOVER, expires_at=timezone.now() + timedelta(hours=1))
    fail = reverse("teach:lab-failover-fail", args=[lab.pk])
    restore = reverse("teach:lab-failover-restore", args=[lab.pk])
    other = Client()
    other.force_login(user_factory(username="someone-else"))
    assert other.post(fail).status_code == 404 and other.post(restore).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(learner)
    assert strict.post(fail).status_code == 403  # no CSRF token
    owner = Client()
    owner.force_login(learner)
    assert owner.get(fail).status_code == 405
    answer = owner.post(fail, HTTP_ACCEPT="application/json")  # the lab has no network (yet): refused, said why
    assert answer.status_code == 409 and answer.json() == {"ok": False, "error": "The lab's network is gone."}
    with pytest.raises(PermissionDenied):
        services.failover_lab_fail(lab=lab, user=user_factory(username="intruder"))
