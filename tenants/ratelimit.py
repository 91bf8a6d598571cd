"""Rate limits (sign-in attempts, API writes) as DRF throttles on the shared Redis cache.

Why the Redis cache and not Django's default local-memory one: per-process memory would let each daphne worker
(or node) allow the full rate. ``CACHES["default"]`` is Django's built-in ``RedisCache`` on the Redis that RQ and
Channels already use. DRF's ``SimpleRateThrottle`` keeps a sliding window of request times per key; its
read-then-write is not atomic, so two processes racing may each let one extra request through — harmless for
limits of "N per minute".

When Redis is unreachable the limit is NOT enforced (fail open) and a warning is logged: a Redis outage already
pauses the agent's jobs, and locking every user out of sign-in and the API on top of that would turn a degraded
service into a down one. The lockout protects against guessing, which a short Redis outage does not make easier.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.throttling import SimpleRateThrottle

log = logging.getLogger(__name__)

_OFF = ("", "0", "off", "none")


class FailOpenRateThrottle(SimpleRateThrottle):
    """A throttle whose rate is the setting named ``rate_setting`` (``"10/m"``: count per s, m, h or d; empty,
    ``0`` or ``off``: no limit), read per request, and that allows the request while Redis is down."""

    rate_setting: str

    def get_rate(self) -> str | None:
        rate = getattr(settings, self.rate_setting) or ""
        return None if rate.strip().lower() in _OFF else rate

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        try:
            return super().parse_rate(rate)
        except (ValueError, KeyError, IndexError):
            raise ImproperlyConfigured(
                f"{self.rate_setting}={rate!r} is not like '10/m' (count per s, m, h or d)") from None

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            log.warning("rate limit %s not enforced: Redis is unavailable (%s)", self.scope, exc)
            return True
