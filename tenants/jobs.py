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
from .choices import LeaseState, ObjectStatus
from .host import InstanceFound, NetworkFound
from .host.errors import HostError
from .hostspecs import driver, instance_spec, network_spec
from .models import Instance, Lease, Network

log = logging.getLogger(__name__)


# Most objects one job converges or tears down besides its own: a batch holds their locks, and another worker's
# job on one of them waits at most locks.LOCK_WAIT (60 s); 100 networks take ~2 s here, ~10 s under heavy load.
BATCH = 100


def _lock_key(network_id: int) -> str:
    return f"netdash:lock:network:{network_id}"


def _lock_connection():
    return django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)


@contextlib.contextmanager
def network_lock(network_id: int) -> Iterator[None]:
    """Serialise host work on one network across workers and nodes (a crashed holder is taken over at once)."""
    with locks.held(_lock_connection(), _lock_key(network_id), what=f"network {network_id}"):
        yield


@contextlib.contextmanager
def free_network_locks(network_ids: list[int]) -> Iterator[list[int]]:
    """The networks among ``network_ids`` whose lock is free right now, held for the block (no waiting)."""
    keys = {_lock_key(pk): pk for pk in network_ids}
    with locks.held_if_free(_lock_connection(), list(keys)) as taken:
        yield [keys[k] for k in taken]


@contextlib.contextmanager
def _co_batch(node: str, status: str, exclude: int) -> Iterator[list[int]]:
    """Other networks of ``node`` in ``status`` whose lock is free: a job converges them along with its own.

    Why: one job per object made each network pay for its own lock, transactions and events (bench: teardown
    of 200 networks 23x the floor). When jobs pile up, the first one does the work of the queued ones; those
    then find nothing left to do and return at once. Caller holds the lock of ``exclude``.
    """
    ids = list(Network.objects.filter(node=node, status=status).exclude(pk=exclude).order_by("pk")
               .values_list("pk", flat=True)[:BATCH])
    with free_network_locks(ids) as taken:
        yield taken


def _reason(exc: BaseException) -> str:
    """A one-line reason a person can act on (HostError messages are written for that)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]


def _load_networks(ids: list[int]) -> list[Network]:
    """Networks with everything ``network_spec`` and the jobs read, in four queries whatever their number."""
    return list(Network.objects.filter(pk__in=ids).select_related("tenant")
                .prefetch_related("subnets", "instances__network").order_by("pk"))


# --- networks -----------------------------------------------------------------------------------------

def _converge_network(network: Network, *, force: bool = False) -> None:
    """Make the host match the network's rows; caller holds the network lock.

    A network that is up only has its reservation/option files refreshed (SIGHUP when changed); ``force``
    (an administrator's re-realise, reconcile finding it unhealthy) always walks the whole plan.
    """
    spec = network_spec(network)
    if force or not driver().refresh_network(spec):
        driver().ensure_network(spec)


def _record_network_outcomes(networks: list[Network], failed: dict[int, BaseException]) -> None:
    """One transaction for a batch: active for those that converged (unless being deleted), error + reason
    for the others; one event per network whose status changed, sent together after the commit."""
    now_active = [n for n in networks if n.pk not in failed and n.status not in (ObjectStatus.ACTIVE,
                                                                                ObjectStatus.DELETING)]
    if not now_active and not failed:
        return
    with transaction.atomic():
        out = []
        if now_active:
            ids = [n.pk for n in now_active]
            changed = set(Network.objects.filter(pk__in=ids).exclude(status=ObjectStatus.DELETING)
                          .values_list("pk", flat=True))
            Network.objects.filter(pk__in=changed).update(status=ObjectStatus.ACTIVE, status_reason="")
            for n in now_active:
                if n.pk in changed:
                    n.status, n.status_reason = ObjectStatus.ACTIVE, ""
                    out.append((n.tenant_id, "network.updated", selectors.network_data(n)))
        for n in networks:
            if n.pk in failed:
                reason = _reason(failed[n.pk])
                if Network.objects.filter(pk=n.pk).update(status=ObjectStatus.ERROR, status_reason=reason):
                    n.status, n.status_reason = ObjectStatus.ERROR, reason
                    out.append((n.tenant_id, "network.updated", selectors.network_data(n)))
        events.publish_many(out)


def _start_instances(network: Network, instances: list[Instance]) -> dict[int, BaseException]:
    """Plug in and start the DHCP client of each instance (network converged, lock held); return failures.

    No ``building`` write: ``pending`` → ``active`` comes from the lease path once the client holds its
    address (the lease watcher may even record it before this returns). An instance in ``error`` goes back
    to ``pending`` so that path can mark it active again.
    """
    failed: dict[int, BaseException] = {}
    for instance in instances:
        try:
            spec = instance_spec(instance)
            if not driver().instance_running(spec):
                # Started, not awaited: the lease reaches the database through the agent's lease watcher, so a
                # burst of instances is not serialised on each client's ~0.1 s DHCP exchange (bench figure 3).
                driver().ensure_instance(spec, wait=False)
        except Exception as exc:
            log.exception("realise_instance %s failed", instance.pk)
            failed[instance.pk] = exc
    retried = [i for i in instances if i.status == ObjectStatus.ERROR and i.pk not in failed]
    if failed or retried:
        with transaction.atomic():
            out = []
            for i in retried:
                if Instance.objects.filter(pk=i.pk, status=ObjectStatus.ERROR).update(
                        status=ObjectStatus.PENDING, status_reason=""):
                    i.status, i.status_reason = ObjectStatus.PENDING, ""
                    out.append((network.tenant_id, "instance.updated", selectors.instance_data(i)))
            for i in instances:
                if i.pk in failed:
                    reason = _reason(failed[i.pk])
                    if Instance.objects.filter(pk=i.pk).exclude(status=ObjectStatus.DELETING).update(
                            status=ObjectStatus.ERROR, status_reason=reason):
                        i.status, i.status_reason = ObjectStatus.ERROR, reason
                        out.append((network.tenant_id, "instance.updated", selectors.instance_data(i)))
            events.publish_many(out)
    return failed


def _sync_if_leased(networks: list[Network]) -> None:
    """``sync_leases`` for the networks that have leases (in their file or as rows); a new network has none,
    and the lease watcher syncs it anyway once its directory appears."""
    with_rows = set(Lease.objects.filter(subnet__network__in=[n.pk for n in networks], state=LeaseState.ACTIVE)
                    .values_list("subnet__network_id", flat=True).distinct())
    for network in networks:
        try:
            entries = driver().network_leases(network.kernel_id)
            if entries or network.pk in with_rows:
                lease_sync.sync_network_leases(network, entries)
        except Exception:  # the lease watcher and the next reconcile sync again
            log.exception("lease sync for network %s failed", network.pk)


def realise_networks(networks: list[Network], *, force: set[int] | frozenset[int] = frozenset()
                     ) -> dict[int, BaseException]:
    """Converge these networks (locks held by the caller) and start their instances; record every outcome in
    one transaction per batch; return the networks that failed."""
    failed: dict[int, BaseException] = {}
    for network in networks:
        try:
            _converge_network(network, force=network.pk in force)
        except Exception as exc:
            log.exception("realise_network %s failed", network.pk)
            failed[network.pk] = exc
    _record_network_outcomes(networks, failed)
    ok = [n for n in networks if n.pk not in failed]
    for network in ok:
        # Instances whose namespace or client is missing (new, or after a reboot) are started too.
        live = [i for i in network.instances.all() if i.status != ObjectStatus.DELETING]
        if live:
            _start_instances(network, live)
    _sync_if_leased(ok)
    return failed


def realise_network(network_id: int, force: bool = False) -> str:
    """Create or update the network on the host (namespaces, bridge, dnsmasq, reservations).

    Also realises the node's other ``pending`` networks whose lock is free (their own jobs then find them up
    and return at once). ``force``: walk the whole plan even if the network looks up (admin re-realise).
    """
    first = Network.objects.filter(pk=network_id).values_list("node", flat=True).first()
    if first is None:
        return "skipped"
    with network_lock(network_id), _co_batch(first, ObjectStatus.PENDING, exclude=network_id) as others:
        networks = [n for n in _load_networks([network_id, *others])
                    if n.pk == network_id or n.status == ObjectStatus.PENDING]
        own = next((n for n in networks if n.pk == network_id), None)
        if own is None or own.status == ObjectStatus.DELETING:
            return "skipped"
        failed = realise_networks(networks, force={network_id} if force else frozenset())
    if network_id in failed:
        raise failed[network_id]
    return "active"


def destroy_networks(networks: list[Network]) -> None:
    """Tear these networks down on the host in one driver call, then delete their rows in one transaction
    (locks held by the caller)."""
    if not networks:
        return
    try:
        driver().remove_networks([n.kernel_id for n in networks])
    except Exception as exc:
        log.exception("destroy_network %s failed", [n.pk for n in networks])
        _record_network_outcomes(networks, {n.pk: HostError(f"teardown failed: {_reason(exc)}") for n in networks})
        raise
    ids = [n.pk for n in networks]
    out = [(n.tenant_id, "network.deleted", selectors.network_data(n)) for n in networks]
    with transaction.atomic():
        Instance.objects.filter(network__in=ids).delete()  # instances protect their subnet; they go first
        Network.objects.filter(pk__in=ids).delete()
        events.publish_many(out)


def destroy_network(network_id: int) -> str:
    """Tear the network down on the host, then delete its rows (leases are kept as history until then).

    Also tears down the node's other ``deleting`` networks whose lock is free, in the same driver call and
    transaction (their own jobs then find them gone).
    """
    first = Network.objects.filter(pk=network_id).values_list("node", flat=True).first()
    if first is None:
        return "gone"
    with network_lock(network_id), _co_batch(first, ObjectStatus.DELETING, exclude=network_id) as others:
        networks = [n for n in Network.objects.filter(pk__in=[network_id, *others]).select_related("tenant")
                    if n.pk == network_id or n.status == ObjectStatus.DELETING]
        if not any(n.pk == network_id for n in networks):
            return "gone"
        destroy_networks(networks)
    return "deleted"


# --- instances ----------------------------------------------------------------------------------------

def realise_instance(instance_id: int) -> str:
    """Reserve the instance's address in dnsmasq, start its namespace and DHCP client (renew if moved).

    The network is converged once (one hosts-file write, one SIGHUP) for all its instances still waiting
    (``pending``/``error``), and their clients are started too: a burst of instances costs one convergence,
    and the later jobs of the same burst find their client running and return.
    """
    network_id = Instance.objects.filter(pk=instance_id).values_list("network_id", flat=True).first()
    if network_id is None:
        return "gone"
    with network_lock(network_id):
        network = next(iter(_load_networks([network_id])), None)
        instance = next((i for i in network.instances.all() if i.pk == instance_id), None) if network else None
        if instance is None:
            return "gone"
        if instance.status == ObjectStatus.DELETING or network.status == ObjectStatus.DELETING:
            return "skipped"
        try:
            _converge_network(network)
        except Exception as exc:
            _record_network_outcomes([network], {network.pk: exc})
            _start_failed([instance], f"network not ready: {_reason(exc)}")
            raise
        _record_network_outcomes([network], {})
        waiting = [i for i in network.instances.all()
                   if i.pk == instance_id or i.status in (ObjectStatus.PENDING, ObjectStatus.ERROR)]
        failed = _start_instances(network, waiting)
        if instance_id in failed:
            raise failed[instance_id]
        held = driver().instance_lease(instance.kernel_id)
        if held is not None and instance.ip_address and str(held.ip) != instance.ip_address:
            # The reservation changed: dnsmasq was reloaded above; ask the client to renew now.
            driver().renew_instance(instance.kernel_id)
    return "started"


def _start_failed(instances: list[Instance], reason: str) -> None:
    for instance in instances:
        services.instance_set_status(instance_id=instance.pk, status=ObjectStatus.ERROR, reason=reason)


def destroy_instance(instance_id: int) -> str:
    """Release the lease, remove the namespace and the reservation, then delete the row.

    Also removes the network's other ``deleting`` instances in the same driver call, transaction and
    dnsmasq reload (their own jobs then find them gone).
    """
    network_id = Instance.objects.filter(pk=instance_id).values_list("network_id", flat=True).first()
    if network_id is None:
        return "gone"
    with network_lock(network_id):
        network = next(iter(_load_networks([network_id])), None)
        own = next((i for i in network.instances.all() if i.pk == instance_id), None) if network else None
        if own is None:
            return "gone"
        doomed = [i for i in network.instances.all() if i.pk == instance_id or i.status == ObjectStatus.DELETING]
        try:
            driver().remove_instances([i.kernel_id for i in doomed])
        except Exception as exc:
            _start_failed(doomed, f"teardown failed: {_reason(exc)}")
            raise
        out = [(network.tenant_id, "instance.deleted", selectors.instance_data(i)) for i in doomed]
        with transaction.atomic():
            Instance.objects.filter(pk__in=[i.pk for i in doomed]).delete()
            events.publish_many(out)
        if network.status != ObjectStatus.DELETING:
            network = _load_networks([network_id])[0]
            _converge_network(network)  # drop the reservations from dnsmasq (SIGHUP)
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


def network_healthy(found: NetworkFound | None, network: Network) -> bool:
    """Both namespaces present and, when a subnet serves DHCP, a dnsmasq alive in the right namespace."""
    if found is None or not found.seg_ns:
        return False
    if not any(s.enable_dhcp for s in network.subnets.all()):
        return True
    return found.dhcp_ns and found.dnsmasq_pid is not None


def instance_healthy(found: InstanceFound | None) -> bool:
    return found is not None and found.ns and found.udhcpc_pid is not None


def reconcile(node: str | None = None) -> ReconcileReport:
    """Converge both ways: create what the database has and the host lacks; remove our orphans.

    Runs when an agent starts and periodically. It compares namespaces and process liveness (a dnsmasq or
    udhcpc pid counts only if it is alive *in the right namespace*), so a killed dnsmasq, a reboot or a
    half-finished job are all repaired here. Networks to realise go in batches of ``BATCH`` (one transaction
    and one round of events per batch); one whose lock is busy (a running job, or a holder that crashed) is
    realised on its own with the waiting lock, which takes over from a dead holder.
    """
    node = node or settings.NETDASH_NODE
    report = ReconcileReport()
    state = driver().scan_host()
    networks = list(Network.objects.filter(node=node).select_related("tenant")
                    .prefetch_related("subnets", "instances__network").order_by("pk"))
    todo: list[Network] = []
    healthy: list[Network] = []
    for network in networks:
        try:
            if network.status == ObjectStatus.DELETING:
                destroy_network(network.pk)  # the first one takes the node's other deleting networks along
                report.destroyed_networks.append(network.name)
                continue
            live = [i for i in network.instances.all() if i.status != ObjectStatus.DELETING]
            for instance in [i for i in network.instances.all() if i.status == ObjectStatus.DELETING]:
                destroy_instance(instance.pk)
                report.destroyed_instances.append(instance.hostname)
            sick = [i for i in live if not instance_healthy(state.instances.get(i.kernel_id))]
            ok = network_healthy(state.networks.get(network.kernel_id), network)
            if not ok or sick or network.status != ObjectStatus.ACTIVE:
                todo.append(network)
                report.realised_instances.extend(i.hostname for i in sick)
            else:
                healthy.append(network)
        except Exception as exc:  # one broken network must not stop the others converging
            report.errors.append(f"{network.name}: {_reason(exc)}")
    for start in range(0, len(todo), BATCH):
        chunk = {n.pk: n for n in todo[start:start + BATCH]}
        with free_network_locks(list(chunk)) as taken:
            batch = [n for n in _load_networks(taken) if n.status != ObjectStatus.DELETING]
            failed = realise_networks(batch, force={n.pk for n in batch})
        for n in batch:
            if n.pk in failed:
                report.errors.append(f"{n.name}: {_reason(failed[n.pk])}")
            else:
                report.realised_networks.append(n.name)
        for pk in set(chunk) - set(taken):
            try:
                realise_network(pk, force=True)
                report.realised_networks.append(chunk[pk].name)
            except Exception as exc:
                report.errors.append(f"{chunk[pk].name}: {_reason(exc)}")
    try:
        _sync_if_leased(healthy)
    except Exception as exc:
        report.errors.append(f"lease sync: {_reason(exc)}")
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
