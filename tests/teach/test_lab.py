"""Learners' labs: a class turns them on, each learner starts a private "Overlapping IPs" sandbox, nobody else
sees it (pages, API, websockets), and an expired lab is torn down from the host and the database."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from django.utils import timezone
from teach_helpers import asynctest, communicator

from teach import selectors
from teach import services as lab_services
from teach.models import Classroom, Lab
from tenants.agent import Agent
from tenants.choices import ObjectStatus
from tenants.hostspecs import names
from tenants.models import Instance, Network, Tenant
from tenants.queue import enqueue_now
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def classroom(user_factory):
    """A class with labs on, one instructor and two learners (none of them staff)."""
    c = Classroom.objects.create(name="net101", labs_enabled=True, lab_quota=1)
    c.instructors.add(user_factory(username="teacher"))
    for name in ("ann", "bob"):
        c.learners.add(user_factory(username=name))
    return c


def _learner(classroom: Classroom, name: str):
    return classroom.learners.get(username=name)


def _namespaces(lab: Lab) -> list[str]:
    n = names()
    out = []
    for network in Network.objects.filter(tenant__labs=lab):
        out += [n.dhcp_ns(network.kernel_id), n.seg_ns(network.kernel_id)]
        out += [n.inst_ns(i.kernel_id) for i in network.instances.all()]
    return out


def _live_communicator(user, path: str) -> WebsocketCommunicator:
    """The live websocket routes with ``scope["user"]`` preset (as tests/live/live_helpers.py)."""
    from live.routing import websocket_urlpatterns

    inner = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        return await inner(dict(scope, user=user), receive, send)

    return WebsocketCommunicator(app, path)


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout


def test_instructor_turns_labs_on_and_the_quota_holds(client, classroom, agent_queue):
    ann, teacher = _learner(classroom, "ann"), classroom.instructors.get()
    classroom.labs_enabled = False
    classroom.save()
    client.force_login(ann)
    client.post(reverse("teach:lab-start"))
    assert not Lab.objects.exists() and not Tenant.objects.exists()
    # A learner cannot switch labs on; the instructor can.
    assert client.post(reverse("teach:classroom-labs", args=[classroom.pk]), {"enabled": "1"}).status_code == 404
    client.force_login(teacher)
    client.post(reverse("teach:classroom-labs", args=[classroom.pk]), {"enabled": "1"})
    assert Classroom.objects.get().labs_enabled
    client.force_login(ann)
    response = client.post(reverse("teach:lab-start"))
    lab = Lab.objects.get()
    assert response["Location"] == reverse("teach:lab-detail", args=[lab.pk])
    assert lab.learner == ann and not ann.is_staff
    assert abs((lab.expires_at - lab.created_at) - timedelta(minutes=120)) < timedelta(seconds=5)
    tenants = list(lab.tenants.order_by("slug"))
    assert [t.slug for t in tenants] == [f"lab{lab.pk}-a", f"lab{lab.pk}-b"]
    assert {s.cidr for s in Network.objects.get(tenant=tenants[0]).subnets.all()} == {selectors.LAB_CIDR}
    assert all(t.quota_networks == t.quota_instances == 1 for t in tenants)
    client.post(reverse("teach:lab-start"))  # over the class's quota of one
    assert Lab.objects.count() == 1 and Tenant.objects.count() == 2
    # The class's own lifetime wins over NETDASH_LAB_MINUTES.
    classroom.refresh_from_db()
    classroom.lab_minutes, classroom.lab_quota = 5, 2
    classroom.save()
    second = lab_services.lab_start(user=ann)
    assert abs((second.expires_at - second.created_at) - timedelta(minutes=5)) < timedelta(seconds=5)


@asynctest
async def test_two_learners_labs_on_the_same_cidr_are_isolated(classroom, agent_queue):
    from asgiref.sync import sync_to_async
    from django.test import Client

    def setup():
        ann, bob = _learner(classroom, "ann"), _learner(classroom, "bob")
        labs = {u.username: lab_services.lab_start(user=u) for u in (ann, bob)}
        return ann, bob, labs

    ann, bob, labs = await sync_to_async(setup)()

    def pages_and_api():
        client = Client()
        client.force_login(ann)
        mine, theirs = labs["ann"], labs["bob"]
        their_tenants = list(theirs.tenants.all())
        their_instances = list(Instance.objects.filter(network__tenant__in=their_tenants))
        assert {i.ip_address for i in their_instances} == {
            i.ip_address for i in Instance.objects.filter(network__tenant__labs=mine)}  # the same CIDR and IPs
        assert client.get(reverse("teach:lab-detail", args=[mine.pk])).status_code == 200
        for name in ("teach:lab-detail", "teach:lab-notice"):
            assert client.get(reverse(name, args=[theirs.pk])).status_code == 404
        assert client.post(reverse("teach:lab-end", args=[theirs.pk])).status_code == 404
        assert Lab.objects.filter(pk=theirs.pk).exists()
        listing = client.get(reverse("teach:lab")).content.decode()
        assert f"Lab {mine.pk}<" in listing and f"Lab {theirs.pk}<" not in listing
        api = client.get("/api/v1/networks/").json()
        api_ids = {n["id"] for n in api.get("results", api)}
        assert api_ids == set(Network.objects.filter(tenant__labs=mine).values_list("id", flat=True))
        for t in their_tenants:
            assert client.get(f"/api/v1/tenants/{t.pk}/").status_code == 404
        for i in their_instances:
            assert client.get(f"/api/v1/instances/{i.pk}/").status_code == 404
            assert client.get(reverse("teach:instance-inspect", args=[i.pk])).status_code == 404
        return their_tenants, their_instances, list(mine.tenants.all())

    their_tenants, their_instances, my_tenants = await sync_to_async(pages_and_api)()
    for t in their_tenants:
        comm = _live_communicator(ann, f"/ws/live/tenants/{t.pk}/")
        connected, _ = await comm.connect()
        assert not connected
    for i in their_instances:
        comm = communicator(ann, f"/ws/teach/instances/{i.pk}/diagnostics/")
        connected, _ = await comm.connect()
        assert not connected
    comm = _live_communicator(ann, f"/ws/live/tenants/{my_tenants[0].pk}/")
    connected, _ = await comm.connect()
    assert connected
    await comm.disconnect()


def test_the_agent_enqueues_the_lab_sweep(settings, agent_queue):
    settings.NETDASH_AGENT_PERIODIC_JOBS = {"teach.jobs.lab_sweep": 60}
    agent = Agent()
    (loop,) = agent._periodic_loops().values()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not agent_queue.job_ids and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.stop.set()
    thread.join(timeout=5)
    assert [job.func_name for job in agent_queue.jobs] == ["teach.jobs.lab_sweep"]


@pytest.mark.host
def test_an_expired_lab_is_removed_from_the_host_and_the_database(host_clean, agent_queue, classroom):
    ann = _learner(classroom, "ann")
    lab = lab_services.lab_start(user=ann)
    keep = lab_services.lab_start(user=_learner(classroom, "bob"))  # not expired: must survive the sweep

    def active() -> bool:
        return Instance.objects.filter(status=ObjectStatus.ACTIVE).count() == 4

    assert settle(active, timeout=40), list(Instance.objects.values_list("hostname", "status", "status_reason"))
    gone, kept = _namespaces(lab), _namespaces(keep)
    assert len(gone) == 6 and all(ns in _netns_list() for ns in gone + kept)
    tenant_ids = list(lab.tenants.values_list("pk", flat=True))
    Lab.objects.filter(pk=lab.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    enqueue_now("teach.jobs.lab_sweep")  # what the agent's periodic loop enqueues

    def removed() -> bool:
        return not Lab.objects.filter(pk=lab.pk).exists() and not Tenant.objects.filter(pk__in=tenant_ids).exists()

    assert settle(removed, timeout=40)
    listed = _netns_list()
    assert not [ns for ns in gone if ns in listed], listed
    assert all(ns in listed for ns in kept) and Lab.objects.filter(pk=keep.pk).exists()
