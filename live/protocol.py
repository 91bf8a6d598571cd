"""The live websocket's wire format, kept out of the consumer so the consumer stays a relay.

Server → client (JSON text frames):

* ``{"type": "snapshot", "epoch": E, "seq": N, "group": ..., "networks": [...], ...}`` — see ``live.snapshot``.
* ``{"type": "event", "event": "network.updated", "epoch": E, "seq": N, "group": ..., "tenant": T, "ts": ...,
  "data": {...}}`` — one per ``tenants.events.send_now``; ``seq`` grows by one per message per group within one
  ``epoch`` (a new epoch: the counter restarted at 1, see ``tenants.events``).
* ``{"type": "error", "code": "...", "message": "..."}`` — a client frame was refused; the socket stays open.
* ``{"type": "pong"}`` — reply to ``ping``.

Client → server: ``{"type": "resync"}`` (send a fresh snapshot) and ``{"type": "ping"}``. Anything else gets an
error frame; a frame over ``MAX_CLIENT_FRAME`` bytes closes the socket with 1009 (message too big).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Client frames are tiny commands; anything larger is a bug or abuse.
MAX_CLIENT_FRAME = 4096
CLOSE_FORBIDDEN = 4403  # refused at handshake: anonymous, not a member, or no such tenant
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008  # too many refused frames
# A client that keeps sending garbage is cut off instead of being answered forever.
MAX_ERRORS = 20
CLIENT_TYPES = frozenset({"resync", "ping"})


@dataclass(frozen=True)
class ClientFrame:
    """A parsed client frame: either a command (``type``) or the reason it was refused."""

    type: str | None = None
    error: str | None = None
    message: str = ""
    close_code: int | None = None


def parse_client_frame(text: str | None, data: bytes | None) -> ClientFrame:
    """Validate one frame from the browser; never raises."""
    if data is not None and text is None:
        if len(data) > MAX_CLIENT_FRAME:
            return ClientFrame(error="too_big", message="Frame too large.", close_code=CLOSE_TOO_BIG)
        return ClientFrame(error="binary", message="Binary frames are not accepted; send JSON text.")
    text = text or ""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CLIENT_FRAME:
        return ClientFrame(error="too_big", message=f"Frame larger than {MAX_CLIENT_FRAME} bytes.",
                           close_code=CLOSE_TOO_BIG)
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        return ClientFrame(error="malformed", message="Frames must be JSON objects like {\"type\": \"resync\"}.")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return ClientFrame(error="malformed", message="Frames must be JSON objects with a string \"type\".")
    kind = payload["type"]
    if kind not in CLIENT_TYPES:
        return ClientFrame(error="unknown_type",
                           message=f"Unknown type {kind[:40]!r}; send one of: {', '.join(sorted(CLIENT_TYPES))}.")
    return ClientFrame(type=kind)


def error_frame(frame: ClientFrame) -> dict[str, Any]:
    return {"type": "error", "code": frame.error, "message": frame.message}


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
