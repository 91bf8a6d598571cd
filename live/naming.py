"""Kernel names and detail-page links as the live view shows them, derived in ONE place each.

Why here: snapshots carry the names, but deltas (``instance.created`` …) carry only the plain ``*_data`` dicts
of ``tenants.selectors``. The browser fills names in for new objects from the templates below, and those
templates are produced by the host naming module itself, so the page can never disagree with the kernel.
"""

from __future__ import annotations

from django.urls import reverse

from tenants.hostspecs import names

# A placeholder kernel id that ``Names`` accepts; it is swapped for "{kernel_id}" to make a template.
_PLACEHOLDER_ID = "0"
_PLACEHOLDER_PK = 987654321


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


def url_template(name: str) -> str:
    """``reverse(name)`` with ``{id}`` in place of the pk."""
    return reverse(name, args=[_PLACEHOLDER_PK]).replace(str(_PLACEHOLDER_PK), "{id}")


def url_templates() -> dict[str, str]:
    """Detail-page URL templates for each kind of node."""
    return {
        "network": url_template("portal:network-detail"),
        "instance": url_template("portal:instance-detail"),
        "router": url_template("portal:router-detail"),
        "floating_ip": url_template("portal:floating-ip-detail"),
        "subnet_leases": url_template("live:subnet-leases"),
        "tenant_topology": url_template("live:tenant"),
    }


def fill(template: str, **values: object) -> str:
    """Apply a template from this module (``{id}``, ``{kernel_id}``) to one object."""
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template
