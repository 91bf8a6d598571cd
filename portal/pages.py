"""What every portal page needs besides its own data: tenant switcher, queue banner, admin links.

Why not a context processor: settings are shared by every app, and only portal pages need this; ``render_page``
keeps it in one place without touching global configuration.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants import selectors
from tenants.queue import queue_available

from .tenancy import current_tenant

QUEUE_DOWN_MESSAGE = "The job queue is unavailable; changes are saved and will be applied when it is back"


def render_page(request: HttpRequest, template: str, context: dict[str, Any] | None = None,
                status: int = 200) -> HttpResponse:
    """Render a portal page with the shared header context."""
    tenant = current_tenant(request)
    tenants = list(selectors.tenants_for_user(request.user).order_by("name")) if request.user.is_authenticated else []
    page = {
        "current_tenant": tenant,
        "switchable_tenants": tenants if len(tenants) > 1 else [],
        "current_tenant_admin": tenant is not None and selectors.is_tenant_admin(request.user, tenant),
        "queue_ok": queue_available(),
        "queue_down_message": QUEUE_DOWN_MESSAGE,
    }
    page.update(context or {})
    return render(request, template, page, status=status)
