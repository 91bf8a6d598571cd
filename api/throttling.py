"""Rate limit of API writes (POST/PUT/PATCH/DELETE) per user, from ``NETDASH_API_WRITE_RATE``; reads are free."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS

from tenants.ratelimit import FailOpenRateThrottle


class ApiWriteThrottle(FailOpenRateThrottle):
    """Counts writes in the Redis cache (shared by every web process); DRF answers 429 with ``Retry-After``."""

    scope = "api-write"
    rate_setting = "NETDASH_API_WRITE_RATE"

    def allow_request(self, request: Any, view: Any) -> bool:
        return request.method in SAFE_METHODS or super().allow_request(request, view)

    def get_cache_key(self, request: Any, view: Any) -> str:
        # Authentication and permissions run before throttles, so a write here has a signed-in user.
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
