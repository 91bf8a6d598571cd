"""The one websocket protocol every consumer speaks: the live view, the teaching diagnostics and the shell.

Client → server: JSON text frames, each an object with a string ``"type"`` the consumer names in
``client_types``. What is refused, and how:

* the handshake (anonymous, not a member, no such object): close ``CLOSE_FORBIDDEN`` (4403), one code for all
  three so a refusal never tells whether another tenant's object exists;
* a frame over ``MAX_CLIENT_FRAME`` bytes, text or binary: close 1009 (RFC 6455 "message too big");
* binary, not JSON, not an object with a string type, an unknown type, bad arguments: an error frame
  ``{"type": "error", "code": "...", "message": "..."}`` — the socket stays open;
* ``MAX_ERRORS`` refused frames: close 1008 (RFC 6455 "policy violation"), the registered code, rather than the
  private 4408 teaching used to send.

Why 4 KiB for every socket (teaching used to allow 16 KiB): measured as ``JSON.stringify`` writes them, the
frames clients send are ``ping`` 15 bytes, ``resync`` 17, a keystroke 27-34, a resize 37, a diagnostics run about
70. Only a paste into the shell is larger, and ``static/teach/shell.js`` sends it in pieces of
512 UTF-16 units (``CHUNK``); JSON writes at most 6 bytes per unit (``\\u0001``), so a piece is at most
3,098 bytes.

Why parse here and not in channels' ``AsyncJsonWebsocketConsumer``: it raises on a non-JSON or binary frame,
which kills the consumer and logs a traceback per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import metrics

MAX_CLIENT_FRAME = 4096
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
# A client that keeps sending garbage is cut off instead of being answered forever.
MAX_ERRORS = 20


@dataclass(frozen=True)
class ClientFrame:
    """A parsed client frame: its JSON object, or why it was refused (and the close code if that ends the socket)."""

    content: dict[str, Any] | None = None
    error: str | None = None
    message: str = ""
    close_code: int | None = None


def parse_client_frame(text: str | None, data: bytes | None, client_types: frozenset[str]) -> ClientFrame:
    """Validate one frame from the browser against the types the consumer accepts; never raises."""
    if text is None:
        if len(data or b"") > MAX_CLIENT_FRAME:
            return ClientFrame(error="too_big", message="Frame too large.", close_code=CLOSE_TOO_BIG)
        return ClientFrame(error="binary", message="Binary frames are not accepted; send JSON text.")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CLIENT_FRAME:
        return ClientFrame(error="too_big", message=f"Frame larger than {MAX_CLIENT_FRAME} bytes.",
                           close_code=CLOSE_TOO_BIG)
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        return ClientFrame(error="malformed", message="Frames must be JSON objects with a string \"type\".")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return ClientFrame(error="malformed", message="Frames must be JSON objects with a string \"type\".")
    if payload["type"] not in client_types:
        return ClientFrame(error="unknown_type", message=f"Unknown type {payload['type'][:40]!r}; send one of: "
                                                         f"{', '.join(sorted(client_types))}.")
    return ClientFrame(content=payload)


class JsonFramesConsumer(AsyncJsonWebsocketConsumer):
    """A consumer that hands ``receive_json`` only valid frames of its ``client_types``, and refuses the rest."""

    client_types: frozenset[str] = frozenset()
    errors = 0
    counted = False  # accepted, so counted in netdash_websocket_clients until it disconnects

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)
        if not self.counted:
            self.counted = True
            metrics.WEBSOCKET_CLIENTS.labels(consumer=type(self).__name__).inc()

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self.counted:
            self.counted = False
            metrics.WEBSOCKET_CLIENTS.labels(consumer=type(self).__name__).dec()
        await super().websocket_disconnect(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        frame = parse_client_frame(text_data, bytes_data, self.client_types)
        if frame.close_code is not None:
            await self.close(code=frame.close_code)
        elif frame.error is not None:
            await self.refuse(frame.error, frame.message)
        else:
            await self.receive_json(frame.content, **kwargs)

    async def refuse(self, code: str, message: str) -> None:
        """Answer a frame with an error frame; after ``MAX_ERRORS`` of them, close the socket."""
        self.errors += 1
        await self.send_json({"type": "error", "code": code, "message": message})
        if self.errors >= MAX_ERRORS:
            await self.close(code=CLOSE_POLICY)
