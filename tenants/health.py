"""Readiness: can this web process do its job — database, Redis, and at least one live agent to run jobs.

Why these three: a page or an API write needs the database; jobs and live updates need Redis; and a saved change
becomes real only when an agent picks its job up. Each check says only "ok" or a fixed phrase (never a host,
a port or an exception text), because load balancers ask anonymously.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import django_rq
from django.conf import settings
from django.db import DatabaseError, connection
from redis.exceptions import RedisError

from .liveness import agent_heartbeats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    """One dependency's answer: ``ok``, and when not, a short reason safe to show anyone."""

    name: str
    ok: bool
    reason: str = ""


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        log.warning("readiness: database: %s", exc)
        return Check("database", False, "unreachable")
    return Check("database", True)


def check_redis() -> Check:
    try:
        django_rq.get_connection(settings.NETDASH_AGENT_QUEUE).ping()
    except (RedisError, OSError) as exc:
        log.warning("readiness: redis: %s", exc)
        return Check("redis", False, "unreachable")
    return Check("redis", True)


def check_agents() -> Check:
    try:
        live = agent_heartbeats()
    except DatabaseError:
        return Check("agents", False, "unknown: database unreachable")
    return Check("agents", True) if live else Check("agents", False, "no live agent")


def readiness() -> list[Check]:
    """Every check, in the order a person would fix them."""
    return [check_database(), check_redis(), check_agents()]
