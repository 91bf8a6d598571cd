"""Which namespaces a user may look into, resolved through ``tenants.selectors`` (tenant isolation).

A *target* is (kind, object): an instance's namespace, or a network's DHCP or segment namespace. Tenant members
see their tenants' instance and DHCP namespaces; superusers see every namespace, including the segments (the
bridge is shared plumbing, not something a tenant owns). Anything else resolves to ``None`` → 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from tenants import selectors
from tenants.choices import ObjectStatus
from tenants.hostspecs import names
from tenants.models import Instance, Network

from .models import TargetKind

KEY_SEPARATOR = "-"


@dataclass(frozen=True)
class Target:
    """A namespace the requesting user may see, with the row it belongs to."""

    kind: str
    network: Network
    instance: Instance | None = None

    @property
    def object_id(self) -> int:
        return self.instance.pk if self.instance is not None else self.network.pk

    @property
    def key(self) -> str:
        """Compact form for query strings: ``inst-12``, ``dhcp-3``, ``seg-3``."""
        return f"{self.kind}{KEY_SEPARATOR}{self.object_id}"

    @property
    def namespace(self) -> str:
        """The kernel name, derived by the one naming module."""
        n = names()
        if self.kind == TargetKind.INSTANCE:
            return n.inst_ns(self.instance.kernel_id)
        if self.kind == TargetKind.DHCP:
            return n.dhcp_ns(self.network.kernel_id)
        return n.seg_ns(self.network.kernel_id)

    @property
    def node(self) -> str:
        return self.network.node

    @property
    def label(self) -> str:
        tenant = self.network.tenant.slug
        if self.instance is not None:
            return f"{tenant}/{self.network.name}/{self.instance.hostname}"
        return f"{tenant}/{self.network.name} ({TargetKind(self.kind).label})"


def resolve(user: AbstractBaseUser, kind: str, object_id: int | str) -> Target | None:
    """The target if ``user`` may see it, else ``None`` (unknown, another tenant's, or superuser-only)."""
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        return None
    if kind == TargetKind.INSTANCE:
        instance = selectors.instances_for_user(user).filter(pk=object_id).first()
        if instance is None or instance.status == ObjectStatus.DELETING:
            return None
        return Target(kind, instance.network, instance)
    if kind == TargetKind.SEGMENT and not user.is_superuser:
        return None
    if kind in (TargetKind.DHCP, TargetKind.SEGMENT):
        network = selectors.networks_for_user(user).filter(pk=object_id).first()
        if network is None or network.status == ObjectStatus.DELETING:
            return None
        return Target(kind, network)
    return None


def resolve_key(user: AbstractBaseUser, key: str | None) -> Target | None:
    """``resolve`` for a ``kind-id`` key from a query string."""
    kind, sep, object_id = (key or "").partition(KEY_SEPARATOR)
    return resolve(user, kind, object_id) if sep else None


def targets_for_user(user: AbstractBaseUser) -> list[Target]:
    """Every namespace ``user`` may inspect, grouped by network (for the index and the compare pickers)."""
    out: list[Target] = []
    networks = selectors.networks_for_user(user).exclude(status=ObjectStatus.DELETING).prefetch_related("instances")
    for network in networks.order_by("tenant__name", "name"):
        if user.is_superuser:
            out.append(Target(TargetKind.SEGMENT, network))
        out.append(Target(TargetKind.DHCP, network))
        for instance in network.instances.all():
            if instance.status != ObjectStatus.DELETING:
                out.append(Target(TargetKind.INSTANCE, network, instance))
    return out


def load(kind: str, object_id: int) -> Target | None:
    """Agent side: the target by id, without a user (the web process already checked access)."""
    if kind == TargetKind.INSTANCE:
        instance = Instance.objects.select_related("network__tenant").filter(pk=object_id).first()
        return Target(kind, instance.network, instance) if instance is not None else None
    network = Network.objects.select_related("tenant").filter(pk=object_id).first()
    return Target(kind, network) if network is not None else None
