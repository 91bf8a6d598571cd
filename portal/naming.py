"""Kernel names shown on pages, taken from the host naming module when it is present.

Why one helper: the namespace name must match what the agent creates; the host naming module is the single
source of those names, so pages ask it and fall back to its documented layout only when it is not installed.
"""

from __future__ import annotations

from django.conf import settings

from tenants.models import Instance


def instance_namespace(instance: Instance) -> str:
    """The network namespace standing in for ``instance`` (what ``ip netns exec`` takes)."""
    try:
        from tenants.hostspecs import names
    except ImportError:
        return f"{settings.NETDASH_PREFIX}inst-{instance.kernel_id}"
    return names().inst_ns(instance.kernel_id)
