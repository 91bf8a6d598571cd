"""The audit log's one writer: every service that changes something records who did it here.

One function for tenants' services and the API's token services alike, so the row's shape (anonymous actors
stored as NULL, the object named by its model, the detail cut to the column) is decided once.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from .models import AuditEntry, Tenant


def audit_record(*, actor: AbstractBaseUser | None, tenant: Tenant | None, action: str, obj: models.Model,
                 detail: str = "") -> AuditEntry:
    """Record ``action`` (``"network.create"``, …) on ``obj`` by ``actor``; ``tenant`` None = not a tenant's row
    (API tokens, and a deleted tenant's own entry, which must outlive the tenant's cascade)."""
    return AuditEntry.objects.create(
        tenant=tenant,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk or ""),
        detail=detail[:500],
    )
