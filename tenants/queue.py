"""Enqueue host jobs after the transaction commits, on the queue of the node that owns the network.

Why a module of its own: services must never enqueue before commit (a worker could load a row that does not
exist yet), and a Redis outage must not turn a saved change into a 500 — the row stays ``pending`` and
``reconcile`` re-derives the missing job from the database.
"""

from __future__ import annotations

import logging

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

log = logging.getLogger(__name__)

JOB_TIMEOUT = 300
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


def queue_available() -> bool:
    """True when the job queue answers; pages use it to say "queue unavailable" rather than fail."""
    try:
        return bool(django_rq.get_connection(settings.NETDASH_AGENT_QUEUE).ping())
    except RedisError:
        return False
