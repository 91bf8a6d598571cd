"""The live websocket's wire format, kept out of the consumer so the consumer stays a relay.

Server → client (JSON text frames):

* ``{"type": "snapshot", "epoch": E, "seq": N, "group": ..., "networks": [...], ...}`` — see ``live.snapshot``.
* ``{"type": "event", "event": "network.updated", "epoch": E, "seq": N, "group": ..., "tenant": T, "ts": ...,
  "data": {...}}`` — one per ``tenants.events.send_now``; ``seq`` grows by one per message per group within one
  ``epoch`` (a new epoch: the counter restarted at 1, see ``tenants.events``).
* ``{"type": "error", "code": "...", "message": "..."}`` — a client frame was refused; the socket stays open.
* ``{"type": "pong"}`` — reply to ``ping``.

Client → server: ``{"type": "resync"}`` (send a fresh snapshot) and ``{"type": "ping"}``. Limits, refusals and
close codes are the ones every consumer shares: ``tenants.websocket``.
"""

from __future__ import annotations

from typing import Any

CLIENT_TYPES = frozenset({"resync", "ping"})


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
