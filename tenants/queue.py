"""Enqueue host jobs after the transaction commits, on the queue of the node that owns the network.

Why a module of its own: services must never enqueue before commit (a worker could load a row that does not
exist yet), and a Redis outage must not turn a saved change into a 500 — the row stays ``pending`` and
``reconcile`` re-derives the missing job from the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300
# Most networks one job converges or tears down: a batch holds their locks, and another worker's job on one of them
# waits at most locks.LOCK_WAIT (60 s); 100 networks take ~2 s here, ~10 s under heavy load.
BATCH = 100
QUEUE_PREFIX = "agent-"  # settings.NETDASH_AGENT_QUEUE spells it once more: settings cannot import this module


def queue_name_for_node(node: str | None) -> str:
    """Each network node's agent listens on its own queue ``agent-<node>``; unscheduled work goes to this node."""
    return f"{QUEUE_PREFIX}{node}" if node else settings.NETDASH_AGENT_QUEUE


def agent_queue(node: str | None = None) -> Queue:
    """The queue of ``node``'s agent. Built directly (not from RQ_QUEUES) because nodes come and go at run time;
    every node shares the one Redis configured for this node's queue."""
    return Queue(queue_name_for_node(node), connection=django_rq.get_connection(settings.NETDASH_AGENT_QUEUE),
                 default_timeout=JOB_TIMEOUT)


def enqueue_now(func: str, *args: object, node: str | None = None) -> bool:
    """Enqueue immediately; return False (and log) when Redis is unreachable instead of raising."""
    try:
        agent_queue(node).enqueue(func, *args)
    except RedisError as exc:
        log.warning("queue unavailable, %s%r left for reconcile: %s", func, args, exc)
        return False
    return True


def enqueue_on_commit(func: str, *args: object, node: str | None = None) -> None:
    """Enqueue ``func`` (a dotted path) once the surrounding transaction commits."""
    transaction.on_commit(lambda: enqueue_now(func, *args, node=node))


def enqueue_many_now(func: str, calls: list[tuple[object, ...]], *, node: str | None = None) -> bool:
    """Enqueue ``func(*args)`` for every ``args`` in ``calls`` in one Redis round trip (one pipeline); return
    False (and log) when Redis is unreachable instead of raising.

    Why: one ``enqueue`` is several Redis commands and a round trip (~23 ms each on a loaded machine), so a bulk
    write of 200 networks spent 4.7 s of its 4.7 s teardown submitting jobs one by one (bench figure 5).
    """
    if not calls:
        return True
    queue = agent_queue(node)
    try:
        queue.enqueue_many([Queue.prepare_data(func, args) for args in calls])
    except RedisError as exc:
        log.warning("queue unavailable, %d %s jobs left for reconcile: %s", len(calls), func, exc)
        return False
    return True


def enqueue_many_on_commit(func: str, calls: Iterable[tuple[str | None, tuple[object, ...]]]) -> None:
    """Enqueue ``func(*args)`` for every ``(node, args)`` in ``calls`` once the surrounding transaction commits,
    one pipeline per node's queue (what bulk writes use instead of :func:`enqueue_on_commit` per row)."""
    by_node: dict[str | None, list[tuple[object, ...]]] = defaultdict(list)
    for node, args in calls:
        by_node[node].append(args)
    for node, group in by_node.items():
        transaction.on_commit(lambda node=node, group=group: enqueue_many_now(func, group, node=node))


def enqueue_batches_on_commit(func: str, placed: Iterable[tuple[str, int]]) -> None:
    """Enqueue ``func(ids)`` once the transaction commits, for every node's ids of ``placed`` (``(node, id)``
    pairs) in chunks of at most :data:`BATCH`: what a bulk write of N networks enqueues instead of N jobs.

    Why: with one job per network the first job of a node did a batch's work and the others then found theirs
    done, each still paying RQ's bookkeeping, a lock and a load (~3-10 ms: 900 of the 1,000 jobs of a bulk
    create did nothing).
    """
    by_node: dict[str, list[int]] = defaultdict(list)
    for node, pk in placed:
        by_node[node].append(pk)
    enqueue_many_on_commit(func, ((node, (ids[i:i + BATCH],)) for node, ids in sorted(by_node.items())
                                  for i in range(0, len(ids), BATCH)))


def queue_available() -> bool:
    """True when the job queue answers; pages use it to say "queue unavailable" rather than fail."""
    try:
        return bool(django_rq.get_connection(settings.NETDASH_AGENT_QUEUE).ping())
    except RedisError:
        return False
