"""A snapshot too big for one websocket message arrives in parts that add up to it (issue 16 "Pages").

Why it matters: daphne (autobahn) refuses to send a message over 1 MiB, and a 500-network / 5,000-instance
snapshot is 2.2 MB: before the split the consumer raised ``PayloadExceededError`` and the page never drew. The
browser side (``static/live/live.js`` reassembling parts) is exercised by ``test_browser_topology.py``, whose
daphne sends 64 KiB frames.
"""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from live_helpers import communicator

from bench.topology_rows import seed
from live import protocol
from live.snapshot import build_snapshot, resolve_view

AUTOBAHN_LIMIT = 1024 * 1024


def _big(rows: int) -> dict:
    return {"type": "snapshot", "epoch": "e", "seq": 7, "group": "g", "tenant": 1, "naming": {"dhcp": "x"},
            "networks": [{"id": i, "name": f"net-{i:05d}"} for i in range(rows)],
            "instances": [{"id": i, "hostname": "vm-" + "x" * (i % 50)} for i in range(rows * 4)],
            "leases": [], "nodes": [{"name": "n1"}]}


def reassemble(frames: list[str]) -> dict:
    """What live.js does: part 0 is the snapshot; each later part's lists are appended in order."""
    first = json.loads(frames[0])
    for i, text in enumerate(frames[1:], 1):
        part = json.loads(text)
        assert (part["type"], part["part"], part["parts"], part["seq"], part["epoch"]) == (
            "snapshot.part", i, len(frames), first["seq"], first["epoch"])
        for key, rows in part.items():
            if isinstance(rows, list):
                first[key] = first[key] + rows
    first.pop("parts", None)
    return first


def test_a_snapshot_that_fits_is_one_unchanged_frame():
    snap = _big(10)
    assert protocol.snapshot_frames(snap, 64 * 1024) == [protocol.encode(snap)]


@pytest.mark.parametrize("limit", [4096, 64 * 1024, 512 * 1024])
def test_a_big_snapshot_is_split_into_frames_under_the_limit_that_add_up_to_it(limit):
    snap = _big(3000)
    whole = len(protocol.encode(snap))
    frames = protocol.snapshot_frames(snap, limit)
    assert len(frames) >= whole // limit + 1
    assert max(len(f.encode()) for f in frames) <= limit
    assert json.loads(frames[0])["parts"] == len(frames)
    assert reassemble(frames) == snap


@pytest.mark.django_db(transaction=True)
def test_the_consumer_sends_a_snapshot_over_daphnes_limit_in_parts(settings):
    """500 networks / 4,000 instances (about 1.7 MB): every frame the socket sends fits autobahn's 1 MiB, and the
    parts add up to what ``build_snapshot`` reads."""
    tenant, user = seed(slug="frames", n_networks=500, n_instances=4000, node="rows-only")
    expected = build_snapshot(user, resolve_view(user, tenant_id=tenant.pk))
    assert len(protocol.encode(expected)) > AUTOBAHN_LIMIT  # else this test proves nothing

    async def body():
        comm = communicator(user, f"/ws/live/tenants/{tenant.pk}/")
        connected, code = await comm.connect(timeout=10)
        assert connected, code
        try:
            frames = [await comm.receive_from(timeout=30)]
            for _ in range(1, json.loads(frames[0]).get("parts", 1)):
                frames.append(await comm.receive_from(timeout=30))
        finally:
            await comm.disconnect()
        return frames

    frames = async_to_sync(body)()
    assert len(frames) >= 4  # 1.7 MB in frames of at most 512 KiB (settings.NETDASH_LIVE_FRAME_BYTES)
    assert max(len(f.encode()) for f in frames) <= settings.NETDASH_LIVE_FRAME_BYTES < AUTOBAHN_LIMIT
    got = reassemble(frames)
    for key in ("networks", "subnets", "instances", "leases", "nodes", "routers"):
        assert got[key] == expected[key], key
