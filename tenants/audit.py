"""The audit log's one writer: every service that changes something records who did it here.

One function for tenants' services and the API's token services alike, so the row's shape (anonymous actors
stored as NULL, the object named by its model, the detail cut to the column) is decided once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import models

from .models import AuditEntry, Tenant


def audit_record(*, actor: AbstractBaseUser | None, tenant: Tenant | None, action: str, obj: models.Model,
                 detail: str = "") -> AuditEntry:
    """Record ``action`` (``"network.create"``, …) on ``obj`` by ``actor``; ``tenant`` None = not a tenant's row
    (API tokens, and a deleted tenant's own entry, which must outlive the tenant's cascade)."""
    entry = _entry(actor, tenant.pk if tenant is not None else None, action, obj, detail)
    entry.save()
    return entry


def audit_record_many(*, actor: AbstractBaseUser | None, action: str,
                      entries: Iterable[tuple[int | None, models.Model, str]]) -> None:
    """Record ``action`` on many objects at once, each ``(tenant id, object, detail)``, in one INSERT: a bulk
    write of 500 networks made 500 (bench figure 5)."""
    AuditEntry.objects.bulk_create([_entry(actor, tenant_id, action, obj, detail)
                                    for tenant_id, obj, detail in entries])


def _entry(actor: AbstractBaseUser | None, tenant_id: int | None, action: str, obj: models.Model,
           detail: str) -> AuditEntry:
    """The row's one shape: an anonymous actor as NULL, the object named by its model, the detail cut to fit."""
    return AuditEntry(
        tenant_id=tenant_id,
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(obj.pk or ""),
        detail=detail[:500],
    )
