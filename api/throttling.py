"""Rate limit of API writes (POST/PUT/PATCH/DELETE) per user, from ``NETDASH_API_WRITE_RATE``; reads are free."""

from __future__ import annotations

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from tenants import ratelimit


class ApiWriteThrottle(BaseThrottle):
    """Counts writes in Redis (shared by every web process); DRF answers 429 with ``Retry-After``."""

    retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        ident = f"user{user.pk}" if user is not None and user.is_authenticated else f"ip{self.get_ident(request)}"
        decision = ratelimit.hit("api-write", ident, settings.NETDASH_API_WRITE_RATE)
        self.retry_after = decision.retry_after or None
        return decision.allowed

    def wait(self) -> float | None:
        return self.retry_after
