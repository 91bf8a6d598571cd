"""Nodes: an agent registers its node and heartbeats; scheduling asks which nodes are alive.

Why heartbeats in the database: a node's liveness must be judged by the same store that holds what the node
hosts, and it must survive a Redis restart (RQ's worker registry does not: every agent vanished from it until
its worker re-registered, so a restart briefly scheduled everything to one node).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from .choices import AgentState, NodeState
from .models import Node

ROLES = ("dhcp", "compute")


def parse_roles(text: str) -> dict[str, bool]:
    """``"dhcp,compute"`` → ``{"dhcp": True, "compute": True}``; an unknown role is refused."""
    named = {role.strip() for role in text.split(",") if role.strip()}
    if unknown := named - set(ROLES):
        raise ValidationError(f"unknown node role(s) {', '.join(sorted(unknown))}: use {', '.join(ROLES)}")
    return {role: role in named for role in ROLES}


def node_register(*, name: str, vtep_address: str | None = None, roles: str = "dhcp,compute") -> Node:
    """Create or update this node's row at agent start: its VTEP and roles are what its settings say now.

    The state an administrator set (drained, down) is kept, except that a ``down`` node whose agent starts
    is up again: starting the agent is how an operator brings a node back.
    """
    node, _ = Node.objects.update_or_create(
        name=name,
        defaults={"vtep_address": vtep_address, **parse_roles(roles), "heartbeat_at": timezone.now()},
    )
    if node.state == NodeState.DOWN:
        node.state = NodeState.UP
        node.save(update_fields=["state"])
        # Imported here: node_events reads through selectors, which import this module.
        from .node_events import publish_node_states
        publish_node_states([name])
    return node


def node_heartbeat(name: str) -> bool:
    """Say the node is alive; False if its row is gone (deleted by an administrator: the agent re-registers)."""
    return Node.objects.filter(name=name).update(heartbeat_at=timezone.now()) == 1


def node_signed_off(name: str) -> None:
    """A cleanly stopping agent: its heartbeat is made as old as a dead node's, so that scheduling and readiness
    do not wait ``NETDASH_NODE_DEAD_SECONDS`` to notice (its state, e.g. drained, is left as it is)."""
    stale = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS + 1)
    Node.objects.filter(name=name).update(heartbeat_at=stale)


def live_nodes() -> QuerySet[Node]:
    """Nodes that are up and whose heartbeat is younger than ``NETDASH_NODE_DEAD_SECONDS``."""
    fresh_since = timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS)
    return Node.objects.filter(state=NodeState.UP, heartbeat_at__gte=fresh_since)


def agent_state(state: str, heartbeat_at: datetime) -> AgentState:
    """Down when marked so or silent for longer than ``NETDASH_NODE_DEAD_SECONDS``; draining when drained."""
    silent = heartbeat_at < timezone.now() - timedelta(seconds=settings.NETDASH_NODE_DEAD_SECONDS)
    if state == NodeState.DOWN or silent:
        return AgentState.DOWN
    return AgentState.DRAINING if state == NodeState.DRAINED else AgentState.LIVE
