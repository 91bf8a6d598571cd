"""The live websocket: snapshot on connect, then relay ``netdash.event`` messages of ONE group.

Thin on purpose (STYLE rule 9): who may watch what and what a snapshot contains live in ``live.snapshot``, the
wire format in ``live.protocol`` and ``tenants.websocket``; this class only joins/leaves the group and sends JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from tenants.websocket import CLOSE_FORBIDDEN, JsonFramesConsumer

from . import protocol
from .snapshot import View, build_snapshot, resolve_view

# A resync costs a full snapshot (hundreds of KB at 1,000 instances): at most one per interval per socket.
RESYNC_INTERVAL = 1.0
# Waiting out a Redis outage: first retry, then doubling up to the cap (a restart takes well under a second).
REJOIN_FIRST_DELAY = 0.2
REJOIN_MAX_DELAY = 5.0


class LiveConsumer(JsonFramesConsumer):
    """``ws/live/tenants/<id>/`` (a tenant's group) or ``ws/live/all/`` (superusers: ``tenants.all``)."""

    client_types = protocol.CLIENT_TYPES
    view: View | None = None
    last_snapshot = 0.0

    # channels' AsyncConsumer.__call__ stores the layer's receive here and then waits on it; a Redis outage makes
    # that receive raise, which would kill the consumer and close the socket. The property hands the dispatch
    # loop a receive that waits the outage out instead (see ``_receive_through_outages``).
    @classmethod
    async def encode_json(cls, content: dict[str, Any]) -> str:
        return protocol.encode(content)

    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._receive_through_outages

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._layer_receive = receive

    async def _receive_through_outages(self) -> dict[str, Any]:
        """The next channel-layer message; after a Redis outage, a ``netdash.rejoined`` message once back.

        Redis keeps nothing across a restart, group memberships included, so the socket must join its group
        again, and every event published meanwhile is lost: the rejoin is followed by a fresh snapshot.
        """
        try:
            return await self._layer_receive()
        except (RedisError, OSError):
            pass
        delay = REJOIN_FIRST_DELAY
        while True:
            await asyncio.sleep(delay)
            try:
                if self.view is not None:
                    await self.channel_layer.group_add(self.view.group, self.channel_name)
                return {"type": "netdash.rejoined"}
            except (RedisError, OSError):
                delay = min(delay * 2, REJOIN_MAX_DELAY)

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
            try:
                await self.channel_layer.group_discard(self.view.group, self.channel_name)
            except (RedisError, OSError):
                pass  # Redis down or restarted: the membership is gone already or expires with the group

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
        # Back to back, no await of anything else in between: no event frame can fall between two parts.
        for frame in protocol.snapshot_frames(snapshot, settings.NETDASH_LIVE_FRAME_BYTES):
            await self.send(text_data=frame)

    async def netdash_rejoined(self, message: dict[str, Any]) -> None:
        """Back in the group after a Redis outage: whatever was published meanwhile is in this snapshot."""
        if self.view is not None:
            await self.send_snapshot()

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
