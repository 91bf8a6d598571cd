"""One way out for events: ``publish()`` sends to the channel layer after the transaction commits.

Groups are dotted names: ``tenant.<id>`` for a tenant's viewers and ``tenants.all`` for superusers' isolation
view. Every message carries a per-group sequence number so a client can detect a gap and ask for a fresh
snapshot. Consumers only relay; they never build events themselves.

The sequence lives in Redis, which keeps nothing across a restart (no persistence), so it starts again at 1. A
client that only compared numbers would drop every later event as "already seen" (``seq <= lastSeq``). So each
group's stream also has an *epoch*: a random token stored in the same Redis hash as the counter, created with
it and lost with it. Events and snapshots carry ``(epoch, seq)``; a client seeing a new epoch knows the
numbering restarted and resyncs once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from typing import Any, NamedTuple

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

ALL_TENANTS_GROUP = "tenants.all"
SEND_TIMEOUT = 5.0  # seconds; a hung Redis must not hold a job or a request forever
_redis: Redis | None = None
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0
_loop_lock = threading.Lock()


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def _counter() -> Redis:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    return _redis


class StreamPosition(NamedTuple):
    """Where a group's stream is: which life of the counter (``epoch``) and the last number sent (``seq``)."""

    epoch: str
    seq: int


def _stream_key(group: str) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:stream:{group}"


def _queue_advance(pipe: Pipeline, group: str, by: int) -> None:
    """Queue on ``pipe``: create the epoch if the hash is new, add ``by`` to the counter, read both back.

    One hash for both fields, so the counter can never outlive its epoch (a lost key loses them together).
    """
    key = _stream_key(group)
    pipe.hsetnx(key, "epoch", secrets.token_hex(6))
    pipe.hincrby(key, "seq", by)
    pipe.hget(key, "epoch")


def _advance(groups: list[str], by: int = 1) -> list[StreamPosition]:
    """Advance each group's stream by ``by`` in one MULTI/EXEC round trip; the positions after it."""
    return _advance_watched(groups, by)[0]


def _advance_watched(groups: list[str], by: int = 1, layer: Any = None) -> tuple[list[StreamPosition], set[str]]:
    """:func:`_advance`, and (given the channel ``layer``) which of ``groups`` have a member, in the same
    MULTI/EXEC: nobody can join a group between its count and its numbering.

    Why that is enough to skip a group nobody is in: a socket joins its group *before* its snapshot reads the
    stream position (``live.consumers``), so a socket joining after this count reads a position that already
    includes these events, and a database that already has their changes (events go out after commit).
    Without a layer (or with a sharded one, whose groups live elsewhere) every group counts as watched.
    """
    pipe = _counter().pipeline(transaction=True)
    for group in groups:
        _queue_advance(pipe, group, by)
    counted = list(dict.fromkeys(groups)) if layer is not None and len(getattr(layer, "hosts", ())) == 1 else []
    since = time.time() - getattr(layer, "group_expiry", 86400)
    for group in counted:
        pipe.zcount(layer._group_key(group), since, "+inf")
    replies = pipe.execute()
    n = 3 * len(groups)
    positions = [StreamPosition(replies[i + 2].decode(), int(replies[i + 1])) for i in range(0, n, 3)]
    watched = {g for g, members in zip(counted, replies[n:], strict=True) if members} if counted else set(groups)
    return positions, watched


def next_sequence(group: str) -> StreamPosition:
    """The next position of ``group``'s stream, shared by every publishing process (web, workers, watcher)."""
    return _advance([group])[0]


def stream_position(group: str) -> StreamPosition:
    """The last position sent to ``group`` (snapshots carry it so deltas continue from it).

    Redis down: epoch ``""``, which no event carries, so the first event after the outage makes the client resync.
    """
    try:
        return _advance([group], by=0)[0]
    except RedisError:
        return StreamPosition("", 0)


def current_sequence(group: str) -> int:
    """The last sequence number sent to ``group``."""
    return stream_position(group).seq


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's one event loop for channel-layer sends, running in a daemon thread.

    Why not ``async_to_sync(layer.group_send)``: with no running loop it makes a fresh loop per call, and
    channels_redis keeps its connection pool per loop, so every event paid for a new Redis connection (the bench
    measured 12 ms per ``send_now`` on a loaded 2-core machine, twice per event; here it is one round trip).
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop.is_closed() or _loop_pid != os.getpid():  # a forked child needs its own
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="netdash-events", daemon=True).start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def send_now(tenant_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Send to the tenant's group and the all-tenants group; a Redis outage is logged, never raised."""
    send_many([(tenant_id, event_type, data)])


async def _group_send(layer: Any, group: str, message: dict[str, Any]) -> None:
    """``layer.group_send``, once more on a fresh connection if the pooled one died with a Redis restart.

    The pool keeps the connections it had before the restart; the first send on each fails with "Connection
    closed by server" and the pool drops it. Without the retry, the first event after every restart was lost
    (tests/live/test_stream_continuity.py). A send that reached Redis before failing may arrive twice: the
    client drops the repeated sequence number.
    """
    try:
        await layer.group_send(group, message)
    except RedisConnectionError:
        await layer.group_send(group, message)


def send_many(items: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Send many events: their sequence numbers in one Redis round trip, their sends in one coroutine per group
    (in order within it), so a batch job does not pay a cross-thread hand-off and two counters per event; a
    group nobody watches is numbered but not sent to (a bulk teardown spent a third of its time on those)."""
    layer = get_channel_layer()
    if layer is None or not items:
        return
    groups = [(tenant_id, group) for tenant_id, _, _ in items for group in (tenant_group(tenant_id), ALL_TENANTS_GROUP)]
    try:
        numbered, watched = _advance_watched([group for _, group in groups], layer=layer)
        positions = iter(numbered)
        now = time.time()
        messages = [
            (group, {"type": "netdash.event", "event": event_type, **next(positions)._asdict(), "group": group,
                     "tenant": tenant_id, "ts": now, "data": data})
            for tenant_id, event_type, data in items
            for group in (tenant_group(tenant_id), ALL_TENANTS_GROUP)
        ]
        by_group: dict[str, list[dict[str, Any]]] = {}
        for group, message in messages:
            if group in watched:
                by_group.setdefault(group, []).append(message)

        async def send_in_order(group: str, batch: list[dict[str, Any]]) -> None:
            for message in batch:
                await _group_send(layer, group, message)

        async def send_all() -> None:
            # Each group's events in order (a socket is in one group), the groups side by side.
            await asyncio.gather(*(send_in_order(g, b) for g, b in by_group.items()))

        future = asyncio.run_coroutine_threadsafe(send_all(), _sender_loop())
        try:
            future.result(SEND_TIMEOUT + 0.01 * len(messages))
        except TimeoutError:
            future.cancel()
            raise
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("%d events (%s, ...) not published: %s", len(items), items[0][1], exc)


def publish_many(items: list[tuple[int, str, dict[str, Any]]]) -> None:
    """:func:`publish` for a batch of ``(tenant_id, event_type, data)``, sent together after the commit."""
    if items:
        items = list(items)
        transaction.on_commit(lambda: send_many(items))


def publish(tenant_id: int, event_type: str, data: dict[str, Any]) -> None:
    """Publish ``event_type`` (e.g. ``network.updated``, ``lease.added``) once the transaction commits."""
    transaction.on_commit(lambda: send_now(tenant_id, event_type, data))
