"""Kernel names and detail-page links as the live view shows them, derived in ONE place each.

Why here: snapshots carry the names, but deltas (``instance.created`` …) carry only the plain ``*_data`` dicts
of ``tenants.selectors``. The browser fills names in for new objects from the templates below, and those
templates are produced by the host naming module itself, so the page can never disagree with the kernel.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from tenants.host.config import HostConfig
from tenants.host.naming import Names

# A placeholder kernel id that ``Names`` accepts; it is swapped for "{kernel_id}" to make a template.
_PLACEHOLDER_ID = "0"
_PLACEHOLDER_PK = 987654321


@lru_cache(maxsize=4)
def _names(prefix: str) -> Names:
    return Names(HostConfig(prefix=prefix, state_dir=settings.NETDASH_STATE_DIR))


def names() -> Names:
    """The host naming factory for this installation's prefix."""
    return _names(settings.NETDASH_PREFIX)


def dhcp_namespace(network_kernel_id: str) -> str:
    """The namespace running the network's dnsmasq (``{prefix}qdhcp-{kernel_id}``)."""
    return names().dhcp_ns(network_kernel_id)


def instance_namespace(instance_kernel_id: str) -> str:
    """The namespace standing in for an instance (``{prefix}inst-{kernel_id}``)."""
    return names().inst_ns(instance_kernel_id)


def _template(name: str) -> str:
    assert name.endswith(_PLACEHOLDER_ID)
    return name[: -len(_PLACEHOLDER_ID)] + "{kernel_id}"


def namespace_templates() -> dict[str, str]:
    """``{"dhcp": "nd-qdhcp-{kernel_id}", "instance": "nd-inst-{kernel_id}"}`` for the browser."""
    return {
        "dhcp": _template(dhcp_namespace(_PLACEHOLDER_ID)),
        "instance": _template(instance_namespace(_PLACEHOLDER_ID)),
    }


def url_template(name: str) -> str | None:
    """``reverse(name)`` with ``{id}`` in place of the pk, or None when no app provides that page.

    The portal is built alongside the live view; guarding with NoReverseMatch lets either ship first.
    """
    try:
        url = reverse(name, args=[_PLACEHOLDER_PK])
    except NoReverseMatch:
        return None
    return url.replace(str(_PLACEHOLDER_PK), "{id}")


def url_templates() -> dict[str, str | None]:
    """Detail-page URL templates for each kind of node (None: no such page yet)."""
    return {
        "network": url_template("portal:network-detail"),
        "instance": url_template("portal:instance-detail"),
        "subnet_leases": url_template("live:subnet-leases"),
        "tenant_topology": url_template("live:tenant"),
    }


def fill(template: str | None, **values: object) -> str | None:
    """Apply a template from this module (``{id}``, ``{kernel_id}``) to one object."""
    if template is None:
        return None
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template
