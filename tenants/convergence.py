"""The host work behind the jobs: converge networks and instances to their rows, in batches, under their locks.

Every function is idempotent: it converges the host towards what the database says *now*, so running one
twice, or after a crash half-way, ends in the same state. Work on one network is serialised by its lock
(``locks.network_lock``; several agents or workers may run), and every outcome is recorded through
``status.record``: ``active``, or ``error`` with a readable reason.

Each node converges only its share of a network (issue 13): the segment and its VXLAN port with the flood list
from the database, its own dnsmasq if it holds one of the network's DHCP servers, its own instances; the
network's rows go when the last node present has torn its share down.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from . import events, lease_sync, network_rows, selectors, status
from .choices import LeaseState, ObjectStatus
from .host import DnsmasqLease, HostError, netns
from .hostspecs import driver, fabric_driver, instance_spec, network_spec, tunnel_spec, underlay_spec, upstream_spec
from .locks import free_network_locks, network_lock
from .models import DhcpServer, Instance, Lease, Network
from .queue import BATCH, enqueue_on_commit
from .scheduling import instance_node, instances_on, network_nodes, networks_on
from .status import Outcome, failure_reason

log = logging.getLogger(__name__)


def load_networks(ids: list[int]) -> list[Network]:
    """Networks with everything ``network_spec`` and the jobs read, in eight queries whatever their number
    (``tests/agent/test_batch_queries.py``)."""
    return list(Network.objects.filter(pk__in=ids).select_related("tenant")
                .prefetch_related("subnets__router_interface", "instances__network", "instances__subnet",
                                  "instances__ipv6_subnet", "dhcp_servers__addresses")
                .order_by("pk"))


@contextlib.contextmanager
def _co_batch(node: str, in_status: str, exclude: int) -> Iterator[list[int]]:
    """Other networks of ``node`` in ``in_status`` whose lock is free: a job converges them along with its own.

    Why: one job per object made each network pay for its own lock, transactions and events (bench: teardown
    of 200 networks 23x the floor). When jobs pile up, the first one does the work of the queued ones; those
    then find nothing left to do and return at once. Caller holds the lock of ``exclude``.
    """
    ids = list(networks_on(node).filter(status=in_status).exclude(pk=exclude).order_by("pk")
               .values_list("pk", flat=True)[:BATCH])
    with free_network_locks(ids) as taken:
        yield taken


def _record_networks(networks: list[Network], failed: dict[int, BaseException], context: str = "") -> None:
    """Active for the networks that converged, error + reason for the others: one transaction, one round of
    events (``status.record`` leaves ``deleting`` rows deleting)."""
    status.record(Outcome(n, ObjectStatus.ERROR, failure_reason(failed[n.pk], context)) if n.pk in failed
                  else Outcome(n, ObjectStatus.ACTIVE) for n in networks)


# --- networks -----------------------------------------------------------------------------------------

def _converge_network(network: Network, *, force: bool = False) -> None:
    """Make the host match the network's rows; caller holds the network lock.

    A network that is up only has its reservation/option files refreshed (SIGHUP when changed); ``force``
    (an administrator's re-realise, reconcile finding it unhealthy) always walks the whole plan.
    """
    spec = network_spec(network)
    if force or not driver().refresh_network(spec):
        driver().ensure_network(spec)
    converge_tunnel(network)
    upstream = upstream_spec(network) if network.node == settings.NETDASH_NODE else None
    if upstream is not None:  # an external network with the simulated outside world on it (demo, tests, labs)
        driver().ensure_upstream(upstream)


def ensure_underlay() -> bool:
    """This node's underlay on the (shared, simulated) fabric, idempotently; False: the node has no VTEP."""
    spec = underlay_spec()
    if spec is None:
        return False
    if spec.host_device is None:  # a real-host underlay has no fabric and nothing to create
        fabric_driver().ensure_fabric()
        driver().ensure_underlay(spec)
    return True


def converge_tunnel(network: Network) -> None:
    """The network's VXLAN port on this node and its flood list (a flood entry per other node the network is
    present on); nothing without a VTEP. An underlay deleted behind our back took the VXLAN devices with it
    (measured): it is made again first."""
    tunnel = tunnel_spec(network)
    if tunnel is None:
        return
    if tunnel.host_device is None and not netns.exists(driver().names.underlay_ns(tunnel.node_id)):
        ensure_underlay()
    driver().ensure_tunnel(tunnel)


def _start_instances(instances: list[Instance]) -> dict[int, BaseException]:
    """Plug in and start the DHCP client of each instance (network converged, lock held); return failures.

    No status write on success: ``pending`` → ``active`` comes from the lease path once the client holds its
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
    status.record(Outcome(i, ObjectStatus.ERROR, failure_reason(failed[i.pk])) if i.pk in failed
                  else Outcome(i, ObjectStatus.ACTIVE, only_from=frozenset({ObjectStatus.PENDING, ObjectStatus.ERROR}))
                  if _no_lease_to_wait_for(i)
                  else Outcome(i, ObjectStatus.PENDING, only_from=frozenset({ObjectStatus.ERROR}))
                  for i in instances)
    return failed


def _no_lease_to_wait_for(instance: Instance) -> bool:
    """An IPv6-only instance on a SLAAC or stateless subnet: the kernel takes its (predicted) address from the RA,
    so no lease row will ever say it is up."""
    return instance.subnet.ip_version == 6 and instance.subnet.predicts_addresses


def _dhcpv6_address_moved(instance: Instance) -> bool:
    """The instance's dhcpcd holds a DHCPv6 address other than the one the database reserves for it now."""
    subnet, wanted = ((instance.ipv6_subnet, instance.ipv6_address) if instance.ipv6_subnet_id
                      else (instance.subnet, instance.ip_address))
    if subnet.ip_version != 6 or subnet.predicts_addresses or not wanted:
        return False
    held = driver().instance_lease6(instance.kernel_id)
    return held is not None and bool(held.addresses) and wanted not in {str(a) for a in held.addresses}


def sync_if_leased(networks: list[Network]) -> None:
    """``sync_leases`` for the networks that have leases (in their file or as rows); a new network has none,
    and the lease watcher syncs it anyway once its directory appears."""
    with_rows = set(Lease.objects.filter(subnet__network__in=[n.pk for n in networks], state=LeaseState.ACTIVE)
                    .values_list("subnet__network_id", flat=True).distinct())
    for network in networks:
        try:
            changed_at, entries = _lease_file(network)
            if entries or network.pk in with_rows:
                lease_sync.sync_network_leases(network, entries, changed_at=changed_at)
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
    _record_networks(networks, failed)
    ok = [n for n in networks if n.pk not in failed]
    for network in ok:
        # Instances whose namespace or client is missing (new, or after a reboot) are started too.
        live = [i for i in network.instances.all()
                if i.status != ObjectStatus.DELETING and instance_node(i) == settings.NETDASH_NODE]
        if live:
            _start_instances(live)
    sync_if_leased(ok)
    return failed


def realise_network(network_id: int, force: bool = False) -> str:
    """Create or update the network on the host (namespaces, bridge, dnsmasq, reservations).

    Also realises the node's other ``pending`` networks whose lock is free (their own jobs then find them up
    and return at once). ``force``: walk the whole plan even if the network looks up (admin re-realise).
    """
    with network_lock(network_id):
        own = next(iter(load_networks([network_id])), None)
        if own is None or own.status == ObjectStatus.DELETING:
            return "skipped"
        if _left_this_node(own):
            return "not on this node"
        if not force and _up_to_date(own):
            return "active"
        with _co_batch(settings.NETDASH_NODE, ObjectStatus.PENDING, exclude=network_id) as others:
            networks = [own, *(n for n in load_networks(others) if n.status == ObjectStatus.PENDING)]
            failed = realise_networks(networks, force={network_id} if force else frozenset())
    if network_id in failed:
        raise failed[network_id]
    return "active"


def realise_network_batch(network_ids: list[int]) -> str:
    """Create a bulk write's networks on this node: one job for up to ``BATCH`` of them (``network_create_many``).

    The free locks are taken at once and their networks converged as one batch (one transaction, one round of
    events); a network whose lock is busy is then realised alone, its lock awaited while holding no other, as its
    own job would. What one job per network cost is in ``queue.enqueue_batches_on_commit``.
    """
    failed: dict[int, BaseException] = {}
    with free_network_locks(sorted(set(network_ids))) as taken:
        todo = [n for n in load_networks(taken)
                if n.status != ObjectStatus.DELETING and not _left_this_node(n) and not _up_to_date(n)]
        failed.update(realise_networks(todo))
    for pk in sorted(set(network_ids) - set(taken)):
        try:
            realise_network(pk)
        except Exception as exc:  # recorded on the network by its batch; the others still get their turn
            failed[pk] = exc
    if failed:
        raise HostError(f"{len(failed)} of {len(network_ids)} networks failed to realise: "
                        + "; ".join(f"{pk}: {exc}" for pk, exc in sorted(failed.items())[:5]))
    return "active"


def _left_this_node(network: Network) -> bool:
    """A job queued for this node before the network left it (its DHCP duty moved while the node was down, and the
    job ran once its agent was back): building it would bring back what the move took away, so what is left of
    it here is removed instead. (The network's own node is always one of its nodes: a one-node install pays no
    query here.)"""
    if network.node == settings.NETDASH_NODE or settings.NETDASH_NODE in network_nodes(network):
        return False
    driver().remove_networks([network.kernel_id])
    return True


def _up_to_date(network: Network) -> bool:
    """The no-op fast path: the network is recorded active, the host matches it (its reservation files are
    refreshed on the way) and every live instance's client runs, so there is nothing to converge, record or sync.

    Why: a batch realises the networks whose own jobs are still queued; each of those then only has to see that
    (bench: 200 networks realised in 31 s, their queue drained 12 s later).
    """
    if network.status != ObjectStatus.ACTIVE or upstream_spec(network) is not None:
        return False
    if tunnel_spec(network) is not None:  # its flood list follows the network's other nodes: converge it
        return False
    if not driver().refresh_network(network_spec(network)):
        return False
    live = [i for i in network.instances.all()
            if i.status != ObjectStatus.DELETING and instance_node(i) == settings.NETDASH_NODE]
    return all(i.status != ObjectStatus.ERROR and driver().instance_running(instance_spec(i)) for i in live)


def destroy_networks(networks: list[Network]) -> None:
    """Tear these networks down on the host in one driver call, then delete their rows in one transaction
    (locks held by the caller). A failed teardown leaves them ``deleting`` with the reason, for reconcile."""
    if not networks:
        return
    try:
        driver().remove_networks([n.kernel_id for n in networks])
    except Exception as exc:
        log.exception("destroy_network %s failed", [n.pk for n in networks])
        _record_networks(networks, dict.fromkeys((n.pk for n in networks), exc), "teardown failed")
        raise
    node, torn = settings.NETDASH_NODE, [n.pk for n in networks]
    with transaction.atomic():
        # This node's share of the rows goes now; a network's own rows go with the last share (another node
        # still holding a DHCP server or an instance of it tears its own share down in its own job).
        instances_on(node).filter(network__in=torn).delete()
        DhcpServer.objects.filter(network__in=torn, node=node).delete()
        network_rows.delete_unshared(networks)


def destroy_network(network_id: int) -> str:
    """Tear the network down on the host, then delete its rows (leases are kept as history until then).

    Also tears down the node's other ``deleting`` networks whose lock is free, in the same driver call and
    transaction (their own jobs then find them gone).
    """
    if not Network.objects.filter(pk=network_id).exists():
        return "gone"
    with (network_lock(network_id),
          _co_batch(settings.NETDASH_NODE, ObjectStatus.DELETING, exclude=network_id) as others):
        networks = [n for n in Network.objects.filter(pk__in=[network_id, *others]).select_related("tenant")
                    if n.pk == network_id or n.status == ObjectStatus.DELETING]
        if not any(n.pk == network_id for n in networks):
            return "gone"
        destroy_networks(networks)
    return "deleted"


def destroy_network_batch(network_ids: list[int]) -> str:
    """Tear down a bulk deletion's networks on this node: one job for up to ``BATCH`` of them
    (``network_delete_many``), the free locks taken at once, a busy one's awaited alone afterwards (as in
    :func:`realise_network_batch`)."""
    with free_network_locks(sorted(set(network_ids))) as taken:
        destroy_networks(list(Network.objects.filter(pk__in=taken, status=ObjectStatus.DELETING)
                              .select_related("tenant")))
    for pk in sorted(set(network_ids) - set(taken)):
        destroy_network(pk)
    return "deleted"


# --- instances ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _instance_locked(instance_id: int) -> Iterator[tuple[Network, Instance] | None]:
    """The instance and its network (loaded as ``load_networks`` does) under the network's lock; None when
    the instance is gone."""
    network_id = Instance.objects.filter(pk=instance_id).values_list("network_id", flat=True).first()
    if network_id is None:
        yield None
        return
    with network_lock(network_id):
        network = next(iter(load_networks([network_id])), None)
        instance = next((i for i in network.instances.all() if i.pk == instance_id), None) if network else None
        yield (network, instance) if instance is not None else None


def realise_instance(instance_id: int) -> str:
    """Reserve the instance's address in dnsmasq, start its namespace and DHCP client (renew if moved).

    The network is converged once (one hosts-file write, one SIGHUP) for all its instances still waiting
    (``pending``/``error``), and their clients are started too: a burst of instances costs one convergence,
    and the later jobs of the same burst find their client running and return.
    """
    with _instance_locked(instance_id) as found:
        if found is None:
            return "gone"
        network, instance = found
        if ObjectStatus.DELETING in (instance.status, network.status):
            return "skipped"
        try:
            _converge_network(network)
        except Exception as exc:
            status.record([Outcome(network, ObjectStatus.ERROR, failure_reason(exc)),
                           Outcome(instance, ObjectStatus.ERROR, failure_reason(exc, "network not ready"))])
            raise
        _record_networks([network], {})
        if driver().instance_running(instance_spec(instance)):
            # An earlier job's batch started it: the instances still waiting have their own jobs behind this
            # one. Checking them all in every job made a burst of M instances cost M² client checks (bench
            # figure 3, 20 instances: 400 checks, 1.4 s of the agent's 8.8 s).
            waiting = [instance]
        else:
            # This node's only: another node's pending instance started here too would answer DHCP with the
            # same MAC from two kernels, and this node's reconcile leaves another node's instance alone.
            waiting = [i for i in network.instances.all()
                       if i.pk == instance_id or i.status in (ObjectStatus.PENDING, ObjectStatus.ERROR)
                       and instance_node(i) == settings.NETDASH_NODE]
        failed = _start_instances(waiting)
        if instance_id in failed:
            raise failed[instance_id]
        held = driver().instance_lease(instance.kernel_id)
        if (held is not None and instance.ip_address and str(held.ip) != instance.ip_address
                or _dhcpv6_address_moved(instance)):
            # The reservation changed: dnsmasq was sent SIGHUP above; ask the clients to renew now.
            driver().renew_instance(instance.kernel_id)
    return "started"


def realise_instance_batch(instance_ids: list[int]) -> str:
    """A bulk create's instances on this node (``instance_create_many``, one network): the network converged
    once (one hosts-file write, one SIGHUP) and every client started, in one job instead of one per instance."""
    network_id = Instance.objects.filter(pk__in=instance_ids).values_list("network_id", flat=True).first()
    if network_id is None:
        return "gone"
    with network_lock(network_id):
        network = next(iter(load_networks([network_id])), None)
        if network is None or network.status == ObjectStatus.DELETING:
            return "skipped"
        wanted = set(instance_ids)
        instances = [i for i in network.instances.all() if i.pk in wanted and i.status != ObjectStatus.DELETING
                     and instance_node(i) == settings.NETDASH_NODE]
        try:
            _converge_network(network)
        except Exception as exc:
            status.record([Outcome(network, ObjectStatus.ERROR, failure_reason(exc)),
                           *(Outcome(i, ObjectStatus.ERROR, failure_reason(exc, "network not ready"))
                             for i in instances)])
            raise
        _record_networks([network], {})
        failed = _start_instances(instances)
    if failed:
        raise HostError(f"{len(failed)} of {len(instances)} instances failed to start: "
                        + "; ".join(f"{pk}: {exc}" for pk, exc in sorted(failed.items())[:5]))
    return "started"


def destroy_instance(instance_id: int) -> str:
    """Release the lease, remove the namespace and the reservation, then delete the row.

    Also removes the network's other ``deleting`` instances in the same driver call, transaction and
    dnsmasq reload (their own jobs then find them gone). A failed teardown leaves them ``deleting`` with the
    reason, for reconcile.
    """
    with _instance_locked(instance_id) as found:
        if found is None:
            return "gone"
        network, own = found
        doomed = [i for i in network.instances.all() if i.pk == own.pk or i.status == ObjectStatus.DELETING]
        try:
            driver().remove_instances([i.kernel_id for i in doomed])
        except Exception as exc:
            reason = failure_reason(exc, "teardown failed")
            status.record(Outcome(i, ObjectStatus.ERROR, reason) for i in doomed)
            raise
        out = [(network.tenant_id, "instance.deleted", selectors.instance_data(i)) for i in doomed]
        with transaction.atomic():
            Instance.objects.filter(pk__in=[i.pk for i in doomed]).delete()
            events.publish_many(out)
        if network.status != ObjectStatus.DELETING:
            network = load_networks([network.pk])[0]
            _converge_network(network)  # drop the reservations and their leases from dnsmasq (SIGHUP, dhcp_release)
            for node in sorted(network_nodes(network) - {settings.NETDASH_NODE}):  # theirs too, and flood lists
                enqueue_on_commit("tenants.jobs.realise_network", network.pk, node=node)
        sync_leases(network)
    return "deleted"


# --- leases -------------------------------------------------------------------------------------------

def sync_leases(network: Network) -> list[lease_sync.LeaseChange]:
    """Read the network's dnsmasq lease file and record the differences."""
    changed_at, entries = _lease_file(network)
    return lease_sync.sync_network_leases(network, entries, changed_at=changed_at)


def _lease_file(network: Network) -> tuple[float | None, list[DnsmasqLease]]:
    """When dnsmasq last wrote the network's lease file (for the file → publish latency; None: no file), and its
    entries. The time is read first, so a write in between only makes the figure larger, never negative."""
    try:
        changed_at = driver().names.leases(network.kernel_id).stat().st_mtime
    except FileNotFoundError:
        changed_at = None
    return changed_at, driver().network_leases(network.kernel_id)
