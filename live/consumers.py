"""The live websocket: snapshot on connect, then relay ``netdash.event`` messages of ONE group.

Thin on purpose (STYLE rule 9): who may watch what and what a snapshot contains live in ``live.snapshot``, the
wire format in ``live.protocol`` and ``tenants.websocket``; this class only joins/leaves the group and sends JSON.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from tenants.websocket import CLOSE_FORBIDDEN, JsonFramesConsumer

from . import protocol
from .snapshot import View, build_snapshot, resolve_view

# A resync costs a full snapshot (hundreds of KB at 1,000 instances): at most one per interval per socket.
RESYNC_INTERVAL = 1.0


class LiveConsumer(JsonFramesConsumer):
    """``ws/live/tenants/<id>/`` (a tenant's group) or ``ws/live/all/`` (superusers: ``tenants.all``)."""

    client_types = protocol.CLIENT_TYPES
    view: View | None = None
    last_snapshot = 0.0

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        subnet = _query_int(self.scope.get("query_string", b""), "subnet")
        self.view = await database_sync_to_async(resolve_view)(
            self.scope.get("user"), tenant_id=kwargs.get("tenant_id"), subnet_id=subnet
        )
        if self.view is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        # Join before the snapshot reads the sequence, so no event can fall between the two.
        await self.channel_layer.group_add(self.view.group, self.channel_name)
        await self.accept()
        await self.send_snapshot()

    async def disconnect(self, code: int) -> None:
        if self.view is not None:
            await self.channel_layer.group_discard(self.view.group, self.channel_name)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] == "resync":
            await asyncio.sleep(max(0.0, self.last_snapshot + RESYNC_INTERVAL - time.monotonic()))
            await self.send_snapshot()
        else:
            await self.send_json({"type": "pong"})

    async def send_snapshot(self) -> None:
        assert self.view is not None
        self.last_snapshot = time.monotonic()
        snapshot = await database_sync_to_async(build_snapshot)(self.scope["user"], self.view)
        if snapshot is None:  # access was revoked since connect
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.send_json(snapshot)

    async def netdash_event(self, message: dict[str, Any]) -> None:
        """Relay one ``tenants.events`` message (channel-layer type ``netdash.event``)."""
        await self.send_json(protocol.event_frame(message))


def _query_int(query_string: bytes, name: str) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get(name)
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        return -1  # an unparsable id names nothing: resolve_view refuses it
