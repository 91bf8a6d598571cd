"""Limit/offset pagination with bounds: ``?limit=10**22`` went straight into SQL and failed with a 500."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1  # far beyond any list here; the database's integer range is the hard limit


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """DRF's LimitOffsetPagination with at most ``MAX_LIMIT`` rows per page and a bounded offset."""

    max_limit = MAX_LIMIT

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
