"""Which agents are alive, and how long ago each last said so: the one answer readiness and metrics share.

An agent's liveness is its ``Node`` row (:mod:`.nodes`): registered at start, ``heartbeat_at`` refreshed every
``NETDASH_NODE_HEARTBEAT_SECONDS``, alive while younger than ``NETDASH_NODE_DEAD_SECONDS`` — the same rows
scheduling asks, so readiness, metrics and scheduling never disagree about which nodes are up (and a Redis
restart, which empties RQ's worker registry, no longer makes every agent look dead).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from .models import Node


def agent_heartbeats() -> dict[str, dt.datetime]:
    """Node name → its agent's latest heartbeat, for every node whose heartbeat is younger than
    ``NETDASH_NODE_DEAD_SECONDS`` (whatever an administrator set its state to: a drained node's agent is alive)."""
    fresh_since = timezone.now() - dt.timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS)
    return dict(Node.objects.filter(heartbeat_at__gte=fresh_since).values_list("name", "heartbeat_at"))
