"""Template helpers so other apps can embed the lease panel with one include."""

from __future__ import annotations

from django import template

from .. import naming

register = template.Library()


@register.simple_tag
def lease_panel_config(subnet) -> dict:
    """The JSON config one ``live/lease_panel.html`` include hands to ``static/live/lease.js``."""
    tenant_id = subnet.network.tenant_id
    return {
        "mode": "subnet",
        "json_id": f"lease-config-{subnet.pk}",
        "ws_path": f"/ws/live/tenants/{tenant_id}/?subnet={subnet.pk}",
        "tenant": tenant_id,
        "subnet": subnet.pk,
        "naming": naming.namespace_templates(),
        "urls": naming.url_templates(),
    }
