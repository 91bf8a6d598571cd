"""RQ entry points: load rows by id, call the host driver, record the outcome, publish events.

Jobs are small and idempotent: each one converges the host towards what the database says *now*, so running
one twice, or after a crash half-way, ends in the same state. Work on one network is serialised with a Redis
lock (several agents or workers may run). Every outcome ends in a recorded status: ``active``, or ``error``
with a readable reason.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import django_rq
from django.conf import settings
from django.db import transaction

from . import events, lease_sync, locks, selectors, services
from .choices import ObjectStatus
from .host.driver import InstanceHost, NetworkHost
from .hostspecs import driver, instance_spec, network_spec
from .models import Instance, Network

log = logging.getLogger(__name__)


@contextlib.contextmanager
def network_lock(network_id: int) -> Iterator[None]:
    """Serialise host work on one network across workers and nodes (a crashed holder is taken over at once)."""
    connection = django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)
    with locks.held(connection, f"netdash:lock:network:{network_id}", what=f"network {network_id}"):
        yield


def _reason(exc: BaseException) -> str:
    """A one-line reason a person can act on (HostError messages are written for that)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


# --- networks -----------------------------------------------------------------------------------------

def _realise_network(network: Network) -> None:
    """Converge one network's namespaces and dnsmasq; caller holds the network lock."""
    spec = network_spec(network)
    driver().ensure_network(spec)


def realise_network(network_id: int) -> str:
    """Create or update the network on the host (namespaces, bridge, dnsmasq, reservations)."""
    with network_lock(network_id):
        network = Network.objects.select_related("tenant").filter(pk=network_id).first()
        if network is None or network.status == ObjectStatus.DELETING:
            return "skipped"
        if network.status != ObjectStatus.ACTIVE:
            services.network_set_status(network_id=network_id, status=ObjectStatus.BUILDING)
        try:
            _realise_network(network)
        except Exception as exc:
            log.exception("realise_network %s failed", network_id)
            services.network_set_status(network_id=network_id, status=ObjectStatus.ERROR, reason=_reason(exc))
            raise
        services.network_set_status(network_id=network_id, status=ObjectStatus.ACTIVE)
        # Instances whose namespace is missing (new, or after a reboot) are started too.
        for instance in network.instances.exclude(status=ObjectStatus.DELETING):
            _realise_instance_locked(instance)
        sync_leases(network)
    return "active"


def destroy_network(network_id: int) -> str:
    """Tear the network down on the host, then delete its rows (leases are kept as history until then)."""
    with network_lock(network_id):
        network = Network.objects.select_related("tenant").filter(pk=network_id).first()
        if network is None:
            return "gone"
        try:
            driver().remove_network(network.kernel_id)
        except Exception as exc:
            log.exception("destroy_network %s failed", network_id)
            services.network_set_status(network_id=network_id, status=ObjectStatus.ERROR,
                                        reason=f"teardown failed: {_reason(exc)}")
            raise
        data = selectors.network_data(network)
        with transaction.atomic():
            network.instances.all().delete()  # instances protect their subnet; they go first
            network.delete()
            events.publish(network.tenant_id, "network.deleted", data)
    return "deleted"


# --- instances ----------------------------------------------------------------------------------------

def _realise_instance_locked(instance: Instance) -> None:
    if instance.status in (ObjectStatus.PENDING, ObjectStatus.ERROR):
        # Active comes from the lease path, once the client holds its address. Set before the client starts:
        # the lease watcher may record the lease (and mark it active) before this job would get here.
        services.instance_set_status(instance_id=instance.pk, status=ObjectStatus.BUILDING)
    try:
        # Started, not awaited: the lease reaches the database through the agent's lease watcher, so one
        # network's burst of instances is not serialised on each client's ~0.1 s DHCP exchange (bench figure 3).
        driver().ensure_instance(instance_spec(instance), wait=False)
    except Exception as exc:
        log.exception("realise_instance %s failed", instance.pk)
        services.instance_set_status(instance_id=instance.pk, status=ObjectStatus.ERROR, reason=_reason(exc))
        raise


def realise_instance(instance_id: int) -> str:
    """Reserve the instance's address in dnsmasq, start its namespace and DHCP client (renew if moved)."""
    instance = Instance.objects.select_related("network__tenant").filter(pk=instance_id).first()
    if instance is None:
        return "gone"
    with network_lock(instance.network_id):
        instance.refresh_from_db()
        network = instance.network
        if instance.status == ObjectStatus.DELETING or network.status == ObjectStatus.DELETING:
            return "skipped"
        try:
            _realise_network(network)
            if network.status != ObjectStatus.ACTIVE:
                services.network_set_status(network_id=network.pk, status=ObjectStatus.ACTIVE)
        except Exception as exc:
            services.network_set_status(network_id=network.pk, status=ObjectStatus.ERROR, reason=_reason(exc))
            services.instance_set_status(instance_id=instance.pk, status=ObjectStatus.ERROR,
                                         reason=f"network not ready: {_reason(exc)}")
            raise
        _realise_instance_locked(instance)
        held = driver().instance_lease(instance.kernel_id)
        if held is not None and instance.ip_address and str(held.ip) != instance.ip_address:
            # The reservation changed: dnsmasq was reloaded above; ask the client to renew now.
            driver().renew_instance(instance.kernel_id)
    return "started"


def destroy_instance(instance_id: int) -> str:
    """Release the lease, remove the namespace and the reservation, then delete the row."""
    instance = Instance.objects.select_related("network__tenant").filter(pk=instance_id).first()
    if instance is None:
        return "gone"
    with network_lock(instance.network_id):
        network = instance.network
        try:
            driver().remove_instance(instance.kernel_id)
        except Exception as exc:
            services.instance_set_status(instance_id=instance.pk, status=ObjectStatus.ERROR,
                                         reason=f"teardown failed: {_reason(exc)}")
            raise
        data = selectors.instance_data(instance)
        with transaction.atomic():
            instance.delete()
            events.publish(network.tenant_id, "instance.deleted", data)
        if network.status != ObjectStatus.DELETING:
            _realise_network(network)  # drop the reservation from dnsmasq (SIGHUP)
        sync_leases(network)
    return "deleted"


# --- leases -------------------------------------------------------------------------------------------

def sync_leases(network: Network) -> list[lease_sync.LeaseChange]:
    """Read the network's dnsmasq lease file and record the differences."""
    return lease_sync.sync_network_leases(network, driver().network_leases(network.kernel_id))


# --- reconcile ----------------------------------------------------------------------------------------

@dataclass
class ReconcileReport:
    """What a reconcile pass found and did (printed by ``manage.py reconcile``)."""

    realised_networks: list[str] = field(default_factory=list)
    destroyed_networks: list[str] = field(default_factory=list)
    realised_instances: list[str] = field(default_factory=list)
    destroyed_instances: list[str] = field(default_factory=list)
    removed_orphans: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.realised_networks, self.destroyed_networks, self.realised_instances,
                    self.destroyed_instances, self.removed_orphans))

    def lines(self) -> list[str]:
        out = []
        for label, items in (("realised networks", self.realised_networks),
                             ("destroyed networks", self.destroyed_networks),
                             ("realised instances", self.realised_instances),
                             ("destroyed instances", self.destroyed_instances),
                             ("removed orphans", self.removed_orphans), ("errors", self.errors)):
            if items:
                out.append(f"{label} ({len(items)}): {', '.join(items)}")
        return out or ["nothing to do: the host matches the database"]


def network_healthy(found: NetworkHost | None, network: Network) -> bool:
    """Both namespaces present and, when a subnet serves DHCP, a dnsmasq alive in the right namespace."""
    if found is None or not found.seg_ns:
        return False
    if not network.subnets.filter(enable_dhcp=True).exists():
        return True
    return found.dhcp_ns and found.dnsmasq_pid is not None


def instance_healthy(found: InstanceHost | None) -> bool:
    return found is not None and found.ns and found.udhcpc_pid is not None


def reconcile(node: str | None = None) -> ReconcileReport:
    """Converge both ways: create what the database has and the host lacks; remove our orphans.

    Runs when an agent starts and periodically. It compares namespaces and process liveness (a dnsmasq or
    udhcpc pid counts only if it is alive *in the right namespace*), so a killed dnsmasq, a reboot or a
    half-finished job are all repaired here.
    """
    node = node or settings.NETDASH_NODE
    report = ReconcileReport()
    state = driver().scan_host()
    networks = list(Network.objects.filter(node=node).select_related("tenant").prefetch_related("instances"))
    for network in networks:
        try:
            if network.status == ObjectStatus.DELETING:
                destroy_network(network.pk)
                report.destroyed_networks.append(network.name)
                continue
            live = [i for i in network.instances.all() if i.status != ObjectStatus.DELETING]
            for instance in [i for i in network.instances.all() if i.status == ObjectStatus.DELETING]:
                destroy_instance(instance.pk)
                report.destroyed_instances.append(instance.hostname)
            sick = [i for i in live if not instance_healthy(state.instances.get(i.kernel_id))]
            healthy = network_healthy(state.networks.get(network.kernel_id), network)
            if not healthy or sick or network.status != ObjectStatus.ACTIVE:
                realise_network(network.pk)
                report.realised_networks.append(network.name)
                report.realised_instances.extend(i.hostname for i in sick)
            else:
                sync_leases(network)
        except Exception as exc:  # one broken network must not stop the others converging
            report.errors.append(f"{network.name}: {_reason(exc)}")
    # Orphans: anything with our prefix the database no longer wants (re-read: jobs above deleted rows).
    wanted = Network.objects.filter(node=node).exclude(status=ObjectStatus.DELETING)
    wanted_networks = set(wanted.values_list("kernel_id", flat=True))
    wanted_instances = set(Instance.objects.filter(network__in=wanted).exclude(status=ObjectStatus.DELETING)
                           .values_list("kernel_id", flat=True))
    before = driver().remove_orphans(wanted_networks, wanted_instances)
    report.removed_orphans = sorted(
        [f"network {k}" for k in before.networks if k not in wanted_networks]
        + [f"instance {k}" for k in before.instances if k not in wanted_instances]
        + [f"stray pid {p}" for pids in before.stray_pids.values() for p in pids]
    )
    return report
