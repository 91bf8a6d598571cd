"""Pages of the live view. They render an empty frame; the data arrives as the websocket's first snapshot.

Why not render the data server-side too: one code path (snapshot + deltas) draws the page, so what you see
after a reconnect is exactly what you saw on first load.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tenants import selectors

from . import naming


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Send the user to their first tenant's topology (superusers to the isolation view)."""
    if request.user.is_superuser:
        return redirect("live:all")
    tenant = selectors.tenants_for_user(request.user).order_by("name").first()
    if tenant is None:
        return render(request, "live/no_tenant.html", status=200)
    return redirect("live:tenant", tenant_id=tenant.pk)


def _page_config(*, mode: str, ws_path: str, tenant_id: int | None, subnet_id: int | None = None) -> dict:
    return {
        "mode": mode,
        "ws_path": ws_path,
        "tenant": tenant_id,
        "subnet": subnet_id,
        "naming": naming.namespace_templates(),
        "urls": naming.url_templates(),
    }


@login_required
def tenant_topology(request: HttpRequest, tenant_id: int) -> HttpResponse:
    """One tenant's networks → subnets → DHCP namespace → instances, live."""
    tenant = get_object_or_404(selectors.tenants_for_user(request.user), pk=tenant_id)
    config = _page_config(mode="tenant", ws_path=f"/ws/live/tenants/{tenant.pk}/", tenant_id=tenant.pk)
    return render(request, "live/topology.html", {
        "tenant": tenant,
        "tenants": selectors.tenants_for_user(request.user).order_by("name"),
        "live_config": config,
    })


@login_required
def all_tenants(request: HttpRequest) -> HttpResponse:
    """Superusers: every tenant side by side, showing that equal CIDRs live in separate namespaces."""
    if not request.user.is_superuser:
        raise Http404("No such page.")
    config = _page_config(mode="all", ws_path="/ws/live/all/", tenant_id=None)
    return render(request, "live/topology.html", {
        "tenant": None,
        "tenants": selectors.tenants_for_user(request.user).order_by("name"),
        "live_config": config,
    })


@login_required
def subnet_leases(request: HttpRequest, subnet_id: int) -> HttpResponse:
    """One subnet's address pool, leases with countdowns, and lease history, live."""
    subnet = get_object_or_404(selectors.subnets_for_user(request.user), pk=subnet_id)
    return render(request, "live/subnet_leases.html", {"subnet": subnet, "network": subnet.network})
