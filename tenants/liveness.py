"""Which agents are alive, and how long ago each last said so: the one answer readiness and metrics share.

Why one small function: today an agent's liveness is its RQ worker registration in Redis (RQ expires a dead
worker's key, and ``last_heartbeat`` is refreshed while it waits for jobs). The multi-node work adds ``Node``
rows with ``heartbeat_at``; switching to them changes this function only.
"""

from __future__ import annotations

import datetime as dt

import django_rq
from django.conf import settings
from django.utils import timezone
from rq import Worker

from .queue import node_of_queue


def agent_heartbeats() -> dict[str, dt.datetime]:
    """Node → its agent's latest heartbeat, for every agent registered now. Raises ``RedisError`` when Redis
    cannot be asked (a caller that must not fail says "unknown" rather than "no agents")."""
    workers = Worker.all(connection=django_rq.get_connection(settings.NETDASH_AGENT_QUEUE))
    beats: dict[str, dt.datetime] = {}
    for worker in workers:
        beat = worker.last_heartbeat or worker.birth_date or timezone.now()
        if timezone.is_naive(beat):
            beat = beat.replace(tzinfo=dt.UTC)  # RQ stores UTC without a zone
        for name in worker.queue_names():
            if (node := node_of_queue(name)) and (node not in beats or beats[node] < beat):
                beats[node] = beat
    return beats
