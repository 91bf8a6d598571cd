"""The live websocket against the real channels_redis layer (REDIS_URL from scripts/test.sh).

What matters: who may connect, that a tenant's socket sees its own events and never another tenant's, that a
snapshot comes first and deltas continue its sequence, and that bad client frames never crash the consumer.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from live_helpers import communicator

from live import protocol
from tenants import events, selectors, services, websocket
from tenants.choices import ObjectStatus
from tenants.models import Instance, Lease
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20  # seconds for a frame or a handshake that must come: a loaded 2-core machine once took over 5 s


def run(coro_fn):
    """Run an async test body (no pytest-asyncio here; database work goes through sync_to_async)."""
    return async_to_sync(coro_fn)()


async def connect_ok(comm: WebsocketCommunicator) -> dict:
    connected, code = await comm.connect(timeout=WAIT)
    assert connected, f"refused with {code}"
    snapshot = await comm.receive_json_from(timeout=WAIT)
    assert snapshot["type"] == "snapshot"
    return snapshot


# --- who may connect ------------------------------------------------------------------------------------

def test_anonymous_is_refused(two_tenants):
    from django.contrib.auth.models import AnonymousUser

    async def body():
        comm = communicator(AnonymousUser(), f"/ws/live/tenants/{two_tenants['acme'].pk}/")
        connected, code = await comm.connect(timeout=WAIT)
        assert not connected and code == websocket.CLOSE_FORBIDDEN

    run(body)


def test_non_member_is_refused_and_unknown_tenant_looks_the_same(two_tenants):
    async def body():
        for path in (f"/ws/live/tenants/{two_tenants['globex'].pk}/", "/ws/live/tenants/999999/"):
            comm = communicator(two_tenants["alice"], path)
            connected, code = await comm.connect(timeout=WAIT)
            assert not connected and code == websocket.CLOSE_FORBIDDEN, path

    run(body)


def test_all_tenants_view_is_for_superusers_only(two_tenants, user_factory):
    root = user_factory(username="root", is_superuser=True)

    async def body():
        comm = communicator(two_tenants["alice"], "/ws/live/all/")
        connected, code = await comm.connect(timeout=WAIT)
        assert not connected and code == websocket.CLOSE_FORBIDDEN
        comm = communicator(root, "/ws/live/all/")
        snapshot = await connect_ok(comm)
        assert snapshot["scope"] == "all" and snapshot["group"] == events.ALL_TENANTS_GROUP
        assert {n["name"] for n in snapshot["networks"]} == {"acme-net", "globex-net"}
        # The picture the product is about: the same CIDR twice, in two different DHCP namespaces.
        same = [s for s in snapshot["subnets"] if s["cidr"] == "192.168.1.0/24"]
        assert len(same) == 2
        namespaces = {n["dhcp_namespace"] for n in snapshot["networks"]}
        assert len(namespaces) == 2
        await comm.disconnect()

    run(body)


def test_subnet_of_another_tenant_is_refused(two_tenants):
    subnet_b = two_tenants["net_b"].subnets.get()

    async def body():
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{two_tenants['acme'].pk}/?subnet={subnet_b.pk}")
        connected, code = await comm.connect(timeout=WAIT)
        assert not connected and code == websocket.CLOSE_FORBIDDEN
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{two_tenants['acme'].pk}/?subnet=abc")
        connected, _ = await comm.connect(timeout=WAIT)
        assert not connected

    run(body)


# --- snapshot, deltas, sequence -------------------------------------------------------------------------

def on_acme_socket(two_tenants, check, *, query: str = "") -> None:
    """Run ``await check(comm, snapshot)`` on alice's live socket of tenant acme — the shape most tests here share —
    and end the socket afterwards, even when the consumer closed it (a closed consumer waits for the disconnect)."""

    async def body():
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{two_tenants['acme'].pk}/{query}")
        snapshot = await connect_ok(comm)
        try:
            await check(comm, snapshot)
        finally:
            await comm.disconnect()

    run(body)


def test_snapshot_contains_only_own_tenant_with_kernel_names(two_tenants, settings):
    net_a = two_tenants["net_a"]
    instance = services.instance_create(network=net_a, hostname="vm1")

    async def check(comm, snapshot):
        assert [n["name"] for n in snapshot["networks"]] == ["acme-net"]
        assert [t["slug"] for t in snapshot["tenants"]] == ["acme"]
        assert snapshot["networks"][0]["dhcp_namespace"] == f"{settings.NETDASH_PREFIX}qdhcp-{net_a.kernel_id}"
        [inst] = snapshot["instances"]
        assert inst["hostname"] == "vm1" and inst["namespace"] == f"{settings.NETDASH_PREFIX}inst-{instance.kernel_id}"
        assert snapshot["naming"]["instance"] == settings.NETDASH_PREFIX + "inst-{kernel_id}"
        assert snapshot["seq"] == await sync_to_async(events.current_sequence)(events.tenant_group(net_a.tenant_id))

    on_acme_socket(two_tenants, check)


def test_tenant_receives_own_event_and_never_another_tenants(two_tenants):
    acme, globex = two_tenants["acme"], two_tenants["globex"]

    async def body():
        comm_a = communicator(two_tenants["alice"], f"/ws/live/tenants/{acme.pk}/")
        comm_b = communicator(two_tenants["bob"], f"/ws/live/tenants/{globex.pk}/")
        await connect_ok(comm_a)
        await connect_ok(comm_b)
        data_b = await sync_to_async(selectors.network_data)(two_tenants["net_b"])
        data_a = await sync_to_async(selectors.network_data)(two_tenants["net_a"])
        # B's event first: if A's socket were subscribed to B it would arrive before A's own.
        await sync_to_async(events.send_now)(globex.pk, "network.updated", data_b)
        await sync_to_async(events.send_now)(acme.pk, "network.updated", data_a)
        got_a = await comm_a.receive_json_from(timeout=WAIT)
        assert got_a["type"] == "event" and got_a["tenant"] == acme.pk and got_a["data"]["name"] == "acme-net"
        assert await comm_a.receive_nothing(timeout=0.5)
        got_b = await comm_b.receive_json_from(timeout=WAIT)
        assert got_b["tenant"] == globex.pk and got_b["data"]["name"] == "globex-net"
        assert await comm_b.receive_nothing(timeout=0.5)
        await comm_a.disconnect()
        await comm_b.disconnect()

    run(body)


def test_snapshot_then_deltas_with_consecutive_sequence_numbers(two_tenants):
    acme, net_a = two_tenants["acme"], two_tenants["net_a"]

    async def check(comm, snapshot):
        seq = snapshot["seq"]
        for status in (ObjectStatus.ERROR, ObjectStatus.ACTIVE, ObjectStatus.PENDING):
            await sync_to_async(network_set_status)(network_id=net_a.pk, status=status, reason="")
        seen = [await comm.receive_json_from(timeout=WAIT) for _ in range(3)]
        assert [m["seq"] for m in seen] == [seq + 1, seq + 2, seq + 3]
        assert [m["data"]["status"] for m in seen] == ["error", "active", "pending"]
        assert {m["event"] for m in seen} == {"network.updated"}
        assert {m["group"] for m in seen} == {events.tenant_group(acme.pk)}

    on_acme_socket(two_tenants, check)


def test_an_idle_socket_still_receives_events(two_tenants):
    """Regression: redis-py 8's 5 s default read timeout killed consumers idle as long as BZPOPMIN blocks."""
    net_a = two_tenants["net_a"]

    async def check(comm, snapshot):
        import asyncio

        await asyncio.sleep(7)
        await sync_to_async(network_set_status)(network_id=net_a.pk, status=ObjectStatus.ACTIVE)
        assert (await comm.receive_json_from(timeout=WAIT))["event"] == "network.updated"

    on_acme_socket(two_tenants, check)


def test_resync_returns_a_fresh_snapshot_with_the_current_sequence(two_tenants):
    net_a = two_tenants["net_a"]

    async def check(comm, first):
        await sync_to_async(network_set_status)(network_id=net_a.pk, status=ObjectStatus.ACTIVE)
        delta = await comm.receive_json_from(timeout=WAIT)
        await comm.send_json_to({"type": "resync"})
        again = await comm.receive_json_from(timeout=WAIT)
        assert again["type"] == "snapshot" and again["seq"] == delta["seq"] == first["seq"] + 1
        assert again["networks"][0]["status"] == "active"
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}

    on_acme_socket(two_tenants, check)


def test_lease_panel_snapshot_has_leases_and_history_and_lease_events_relay(two_tenants):
    acme, net_a = two_tenants["acme"], two_tenants["net_a"]
    subnet = net_a.subnets.get()
    instance = services.instance_create(network=net_a, hostname="vm1")

    async def check(comm, snapshot):
        assert snapshot["subnet"] == subnet.pk and snapshot["leases"] == [] and snapshot["lease_events"] == []
        lease = await sync_to_async(Lease.objects.create)(
            subnet=subnet, instance=instance, ip_address=instance.ip_address, mac_address=instance.mac_address,
            hostname="vm1")
        fresh = Lease.objects.select_related("subnet")
        data = await sync_to_async(lambda: selectors.lease_data(fresh.get(pk=lease.pk)))()
        await sync_to_async(events.send_now)(acme.pk, "lease.added", data)
        got = await comm.receive_json_from(timeout=WAIT)
        assert got["event"] == "lease.added" and got["data"]["ip_address"] == instance.ip_address
        await comm.send_json_to({"type": "resync"})
        again = await comm.receive_json_from(timeout=WAIT)
        assert [le["ip_address"] for le in again["leases"]] == [instance.ip_address]

    on_acme_socket(two_tenants, check, query=f"?subnet={subnet.pk}")


def test_membership_removed_then_resync_closes(two_tenants):
    acme = two_tenants["acme"]

    async def check(comm, snapshot):
        membership = await sync_to_async(lambda: two_tenants["alice"].memberships.get(tenant=acme))()
        await sync_to_async(services.membership_remove)(membership=membership)
        await comm.send_json_to({"type": "resync"})
        out = await comm.receive_output(timeout=WAIT)
        assert out == {"type": "websocket.close", "code": websocket.CLOSE_FORBIDDEN}

    on_acme_socket(two_tenants, check)


# --- bad client frames -----------------------------------------------------------------------------------

@pytest.mark.parametrize("frame,code", [
    ("not json", "malformed"),
    ("[1, 2]", "malformed"),
    ('{"type": 5}', "malformed"),
    ('{"type": "drop_tables"}', "unknown_type"),
    ("[" * 5000, "too_big"),
    ("[" * 3000 + "]" * 3000, "too_big"),
    ("[" * 2000, "malformed"),  # deep nesting within the size limit: still only an error
])
def test_malformed_frames_get_an_error_and_the_socket_stays_usable(two_tenants, frame, code):
    async def check(comm, snapshot):
        await comm.send_to(text_data=frame)
        if code == "too_big":
            out = await comm.receive_output(timeout=WAIT)
            assert out == {"type": "websocket.close", "code": websocket.CLOSE_TOO_BIG}
            return
        reply = await comm.receive_json_from(timeout=WAIT)
        assert reply["type"] == "error" and reply["code"] == code and reply["message"]
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(timeout=WAIT) == {"type": "pong"}

    on_acme_socket(two_tenants, check)


def test_binary_and_oversized_binary_frames(two_tenants):
    async def check(comm, snapshot):
        await comm.send_to(bytes_data=b"\x00\x01")
        assert (await comm.receive_json_from(timeout=WAIT))["code"] == "binary"
        await comm.send_to(bytes_data=b"x" * (websocket.MAX_CLIENT_FRAME + 1))
        assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": websocket.CLOSE_TOO_BIG}

    on_acme_socket(two_tenants, check)


def test_a_client_that_keeps_sending_garbage_is_cut_off(two_tenants):
    async def check(comm, snapshot):
        for _ in range(websocket.MAX_ERRORS):
            await comm.send_to(text_data="{")
        for _ in range(websocket.MAX_ERRORS):
            assert (await comm.receive_json_from(timeout=WAIT))["type"] == "error"
        assert await comm.receive_output(timeout=WAIT) == {"type": "websocket.close", "code": websocket.CLOSE_POLICY}

    on_acme_socket(two_tenants, check)


# --- the real stack: session cookie through AuthMiddlewareStack, origin check --------------------------

def _session_headers(user, origin: bytes) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [(b"cookie", cookie), (b"origin", origin), (b"host", b"127.0.0.1")]


def test_real_stack_session_cookie_and_origin_check(two_tenants):
    from netdash.asgi import application

    acme = two_tenants["acme"]
    good = _session_headers(two_tenants["alice"], b"http://127.0.0.1:8000")
    evil = _session_headers(two_tenants["alice"], b"https://evil.example")

    async def body():
        comm = WebsocketCommunicator(application, f"/ws/live/tenants/{acme.pk}/", headers=good)
        snapshot = await connect_ok(comm)
        assert snapshot["tenant"] == acme.pk
        await comm.disconnect()
        comm = WebsocketCommunicator(application, f"/ws/live/tenants/{acme.pk}/", headers=evil)
        connected, _ = await comm.connect(timeout=WAIT)
        assert not connected
        await comm.disconnect()  # a refused consumer waits for websocket.disconnect; end it before the loop closes
        comm = WebsocketCommunicator(application, f"/ws/live/tenants/{acme.pk}/",
                                     headers=[(b"origin", b"http://127.0.0.1:8000")])
        connected, code = await comm.connect(timeout=WAIT)
        assert not connected and code == websocket.CLOSE_FORBIDDEN
        await comm.disconnect()

    run(body)


def test_protocol_event_frame_is_json_serialisable():
    frame = protocol.event_frame({"type": "netdash.event", "event": "x", "seq": 1, "group": "tenant.1", "tenant": 1,
                                  "ts": 1.0, "data": {"a": 1}})
    assert json.loads(json.dumps(frame))["data"] == {"a": 1} and "netdash" not in json.dumps(frame)


def test_instance_events_carry_enough_to_name_the_namespace(two_tenants):
    inst = services.instance_create(network=two_tenants["net_a"], hostname="vm2")
    data = selectors.instance_data(Instance.objects.get(pk=inst.pk))
    assert data["kernel_id"] == inst.kernel_id  # the browser fills the namespace name from snapshot["naming"]


def test_a_group_nobody_watches_is_numbered_but_not_sent_to(two_tenants, user_factory, monkeypatch):
    """A bulk job's events go only to groups with a member (one Redis count, in the numbering's MULTI); the
    others' numbers still advance, so a socket joining later starts from a position that includes them."""
    from channels.layers import get_channel_layer

    acme, root = two_tenants["acme"], user_factory(username="root", is_superuser=True)
    layer, sent_to = get_channel_layer(), []
    real_send = layer.group_send

    async def spy(group, message):
        sent_to.append(group)
        await real_send(group, message)

    monkeypatch.setattr(layer, "group_send", spy)
    data = selectors.network_data(two_tenants["net_a"])
    items = [(acme.pk, "network.updated", data)] * 3

    async def body():
        comm = communicator(two_tenants["alice"], f"/ws/live/tenants/{acme.pk}/")
        snapshot = await connect_ok(comm)
        everyone = await sync_to_async(events.stream_position)(events.ALL_TENANTS_GROUP)
        await sync_to_async(events.send_many)(items)
        seen = [await comm.receive_json_from(timeout=WAIT) for _ in items]
        assert [m["seq"] for m in seen] == [snapshot["seq"] + k for k in (1, 2, 3)]
        assert sent_to == [events.tenant_group(acme.pk)] * 3, "the unwatched all-tenants group was sent to"
        after = await sync_to_async(events.stream_position)(events.ALL_TENANTS_GROUP)
        assert after == (everyone.epoch, everyone.seq + 3), "the unwatched group's numbering did not advance"
        # Once somebody watches it, it is sent to, continuing from the position its snapshot carried.
        admin = communicator(root, "/ws/live/all/")
        first = await connect_ok(admin)
        sent_to.clear()
        await sync_to_async(events.send_many)(items[:1])
        got = await admin.receive_json_from(timeout=WAIT)
        assert got["group"] == events.ALL_TENANTS_GROUP and got["seq"] == first["seq"] + 1
        assert sorted(sent_to) == sorted([events.tenant_group(acme.pk), events.ALL_TENANTS_GROUP])
        await comm.disconnect()
        await admin.disconnect()

    run(body)
