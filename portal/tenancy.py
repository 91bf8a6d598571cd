"""The "current tenant" of a browser session.

Why in the session: a user who belongs to several tenants works in one at a time (lists, quotas and new
networks refer to it); the choice is re-checked against ``tenants_for_user`` on every request, so a revoked
membership takes effect immediately and a forged session value can never select a foreign tenant.
"""

from __future__ import annotations

from django.http import HttpRequest

from tenants import selectors
from tenants.models import Tenant

SESSION_KEY = "netdash_tenant_id"


def current_tenant(request: HttpRequest) -> Tenant | None:
    """The tenant the user is working in: the one chosen in this session, else their first tenant."""
    tenants = selectors.tenants_for_user(request.user)
    chosen = request.session.get(SESSION_KEY)
    tenant = tenants.filter(pk=chosen).first() if chosen else None
    if tenant is None:
        tenant = tenants.order_by("name").first()
        if tenant is not None:
            request.session[SESSION_KEY] = tenant.pk
    return tenant


def select_tenant(request: HttpRequest, tenant: Tenant) -> None:
    """Remember ``tenant`` (already checked to be one of the user's) as the session's current tenant."""
    request.session[SESSION_KEY] = tenant.pk
