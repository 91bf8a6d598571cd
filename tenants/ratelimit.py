"""Fixed-window rate limits kept in Redis (sign-in attempts, API writes).

Why Redis and not Django's cache: the default cache is per-process memory, so several daphne workers (or nodes)
would each allow the full rate. One ``INCR`` + ``EXPIRE`` per request on the Redis that RQ and Channels use
already is enough for limits of "N per minute".

When Redis is unreachable the limit is NOT enforced (fail open) and a warning is logged: a Redis outage already
pauses the agent's jobs, and locking every user out of sign-in and the API on top of that would turn a degraded
service into a down one. The lockout protects against guessing, which a short Redis outage does not make easier.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import django_rq
from django.conf import settings
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY_PREFIX = "netdash:ratelimit"
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\w*\s*\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``seconds``."""

    count: int
    seconds: int


def parse_rate(text: str | None) -> Rate | None:
    """``"10/m"``, ``"120/min"``, ``"5/10s"`` → Rate; empty, ``"0"`` or ``"off"`` → None (no limit)."""
    if text is None or text.strip().lower() in ("", "0", "off", "none"):
        return None
    match = _RATE.match(text.lower())
    if not match:
        raise ValueError(f"rate {text!r} is not like '10/m' (count per s, m, h or d)")
    count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
    return Rate(count, multiple * _UNIT_SECONDS[unit])


@dataclass(frozen=True)
class Decision:
    """The outcome of one hit: allowed, and if not, how many seconds until the window resets."""

    allowed: bool
    retry_after: int = 0


def hit(scope: str, ident: str, rate_text: str | None) -> Decision:
    """Count one request of ``ident`` (a user id, an IP and user name) against ``scope``'s rate."""
    rate = parse_rate(rate_text)
    if rate is None:
        return Decision(True)
    now = time.time()
    window = int(now // rate.seconds)
    key = f"{KEY_PREFIX}:{scope}:{ident}:{window}"
    try:
        connection = django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)
        pipe = connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, rate.seconds + 1)
        count, _ = pipe.execute()
    except RedisError as exc:
        log.warning("rate limit %s for %s not enforced: Redis is unavailable (%s)", scope, ident, exc)
        return Decision(True)
    if count <= rate.count:
        return Decision(True)
    return Decision(False, retry_after=max(1, int((window + 1) * rate.seconds - now + 0.999)))
