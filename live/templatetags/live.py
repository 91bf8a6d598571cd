"""Template helpers so other apps can embed the lease panel, or the live client, with one include."""

from __future__ import annotations

from django import template

from tenants.choices import LeaseState, ObjectStatus

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


@register.simple_tag
def live_page_config(tenant_id: int | None = None, network_id: int | None = None,
                     instance_id: int | None = None) -> dict:
    """The JSON config ``live/page_client.html`` hands to ``static/live/portal.js``.

    ``network_id`` / ``instance_id`` name the object a detail page is about, so the script knows which new rows
    belong on it; no ``tenant_id`` (the superusers' nodes page) is the all-tenants view. Labels come from the
    enums so a patched badge reads exactly like a server-rendered one.
    """
    return {
        "mode": "page",
        "ws_path": f"/ws/live/tenants/{tenant_id}/" if tenant_id else "/ws/live/all/",
        "tenant": tenant_id or None,
        "network": network_id or None,  # an include without the variable passes ""
        "instance": instance_id or None,
        "naming": naming.namespace_templates(),
        "urls": naming.url_templates(),
        "labels": {"status": dict(ObjectStatus.choices), "lease": dict(LeaseState.choices)},
    }
