"""The live websocket's wire format, kept out of the consumer so the consumer stays a relay.

Server → client (JSON text frames):

* ``{"type": "snapshot", "epoch": E, "seq": N, "group": ..., "networks": [...], ...}`` — see ``live.snapshot``.
  A snapshot larger than ``NETDASH_LIVE_FRAME_BYTES`` comes as several frames (``snapshot_frames``): the first is
  the ``snapshot`` frame with ``"parts": K`` and the first slice of each big list, then K-1
  ``{"type": "snapshot.part", "part": i, "parts": K, "epoch", "seq", <list>: [...]}`` frames with the next
  slices, back to back (the consumer sends nothing in between); the client concatenates, then applies.
* ``{"type": "event", "event": "network.updated", "epoch": E, "seq": N, "group": ..., "tenant": T, "ts": ...,
  "data": {...}}`` — one per ``tenants.events.send_now``; ``seq`` grows by one per message per group within one
  ``epoch`` (a new epoch: the counter restarted at 1, see ``tenants.events``).
* ``{"type": "error", "code": "...", "message": "..."}`` — a client frame was refused; the socket stays open.
* ``{"type": "pong"}`` — reply to ``ping``.

Client → server: ``{"type": "resync"}`` (send a fresh snapshot) and ``{"type": "ping"}``. Limits, refusals and
close codes are the ones every consumer shares: ``tenants.websocket``.
"""

from __future__ import annotations

import json
from typing import Any

CLIENT_TYPES = frozenset({"resync", "ping"})

# The lists that grow with the view; everything else in a snapshot is a handful of rows and rides in part 0.
SPLIT_LISTS = ("networks", "subnets", "instances", "leases", "lease_events", "routers", "floating_ips",
               "dhcp_servers")


def encode(content: dict[str, Any]) -> str:
    """Compact JSON (no spaces after ``,`` and ``:``): about 10 % smaller than json's default separators."""
    return json.dumps(content, separators=(",", ":"))


def snapshot_frames(snapshot: dict[str, Any], max_bytes: int) -> list[str]:
    """``snapshot`` as encoded frames of at most about ``max_bytes`` each (one frame when it fits).

    Why: daphne's websocket (autobahn) refuses to *send* a message over its 1 MiB payload limit — a 500-network /
    5,000-instance snapshot (2.2 MB) raised ``PayloadExceededError`` and the page never drew. Each big list is cut
    into K equal slices and frame i carries slice i of every list, so the frames come out about the same size;
    K doubles until every frame fits (lists of very uneven rows).
    """
    whole = encode(snapshot)
    size = len(whole.encode("utf-8"))
    if size <= max_bytes:
        return [whole]
    longest = max((len(v) for k, v in snapshot.items() if k in SPLIT_LISTS and isinstance(v, list)), default=1)
    parts = -(-size // max_bytes)
    while True:
        frames = [encode(frame) for frame in _split(snapshot, parts)]
        if all(len(f.encode("utf-8")) <= max_bytes for f in frames) or parts >= longest:
            return frames  # (a frame still too big then holds a single row over max_bytes: nothing splits it)
        parts *= 2


def _split(snapshot: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    def piece(rows: list[Any], i: int) -> list[Any]:
        return rows[len(rows) * i // parts:len(rows) * (i + 1) // parts]

    lists = {key: snapshot[key] for key in SPLIT_LISTS if isinstance(snapshot.get(key), list)}
    first = snapshot | {key: piece(rows, 0) for key, rows in lists.items()} | {"parts": parts}
    rest = [{"type": "snapshot.part", "part": i, "parts": parts, "group": snapshot.get("group"),
             "epoch": snapshot.get("epoch"), "seq": snapshot.get("seq")}
            | {key: piece(rows, i) for key, rows in lists.items()} for i in range(1, parts)]
    return [first, *rest]


def event_frame(message: dict[str, Any]) -> dict[str, Any]:
    """The browser's view of a channel-layer ``netdash.event`` message (drops the layer's ``type``)."""
    return {
        "type": "event",
        "event": message.get("event"),
        "epoch": message.get("epoch"),
        "seq": message.get("seq"),
        "group": message.get("group"),
        "tenant": message.get("tenant"),
        "ts": message.get("ts"),
        "data": message.get("data") or {},
    }
