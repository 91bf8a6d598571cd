"""Reconcile: converge a node's host to the database both ways — create what is missing, remove our orphans.

Each node converges its own share of every network present on it (``scheduling.networks_on``): segment, VXLAN
port and flood list, its dnsmasq where it holds a DHCP server, its instances. Runs when an agent starts and
periodically (``tenants.jobs.reconcile``). It compares namespaces and process
liveness (a dnsmasq or udhcpc pid counts only if it is alive *in the right namespace*), so a killed dnsmasq, a
reboot or a half-finished job are all repaired here. The steps, in order:

0. make this node's underlay on the fabric (a node with a VTEP: from agent start, and again if deleted);
1. finish every deletion the database asks for (rows in ``deleting``);
2. sort the rest into healthy networks and networks to realise (unhealthy on the host, a sick instance, or
   not recorded ``active``);
3. realise those in batches of ``queue.BATCH`` (one transaction and one round of events per batch); one
   whose lock is busy (a running job, or a holder that crashed) is realised on its own with the waiting lock,
   which takes over from a dead holder;
4. sync the leases of the healthy ones and converge their VXLAN ports (flood lists follow the database);
5. converge the node's routers after their networks (finish their deletions, realise the rest: ``ensure_router``
   rebuilds a wiped router and restores a flushed NAT table, and leaves a matching one alone);
6. remove anything with our prefix that the database no longer wants (routers included), leaving alone what it
   assigns to other nodes (agents of several nodes on one machine share the prefix: each removes only its own
   orphans).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from django.conf import settings

from . import convergence, metrics, router_convergence
from .choices import ObjectStatus
from .host import HostScan, InstanceFound, NetworkFound
from .hostspecs import driver, instance_spec
from .locks import free_network_locks
from .models import Instance, Network, Router
from .queue import BATCH
from .scheduling import instance_node, instances_on, networks_on, serves_dhcp
from .status import failure_reason


@dataclass
class ReconcileReport:
    """What a reconcile pass found and did (printed by ``manage.py reconcile``)."""

    realised_networks: list[str] = field(default_factory=list)
    destroyed_networks: list[str] = field(default_factory=list)
    realised_instances: list[str] = field(default_factory=list)
    destroyed_instances: list[str] = field(default_factory=list)
    removed_orphans: list[str] = field(default_factory=list)
    converged_routers: list[str] = field(default_factory=list)
    destroyed_routers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.change_count > 0

    @property
    def change_count(self) -> int:
        return sum(map(len, (self.realised_networks, self.destroyed_networks, self.realised_instances,
                             self.destroyed_instances, self.removed_orphans, self.destroyed_routers)))

    def lines(self) -> list[str]:
        out = []
        for label, items in (("realised networks", self.realised_networks),
                             ("destroyed networks", self.destroyed_networks),
                             ("realised instances", self.realised_instances),
                             ("destroyed instances", self.destroyed_instances),
                             ("converged routers", self.converged_routers),
                             ("destroyed routers", self.destroyed_routers),
                             ("removed orphans", self.removed_orphans), ("errors", self.errors)):
            if items:
                out.append(f"{label} ({len(items)}): {', '.join(items)}")
        return out or ["nothing to do: the host matches the database"]


def network_healthy(found: NetworkFound | None, network: Network, node: str | None = None) -> bool:
    """The segment present and, when a subnet serves DHCP and ``node`` (default: this node) holds one of the
    network's servers, its DHCP namespace with a dnsmasq alive in it; a node holding none runs no dnsmasq (a
    duty that moved away while it was down is dropped)."""
    if found is None or not found.seg_ns:
        return False
    if not serves_dhcp(network, node or settings.NETDASH_NODE):
        return not found.dhcp_ns and found.dnsmasq_pid is None
    if not any(s.enable_dhcp for s in network.subnets.all()):
        return True
    return found.dhcp_ns and found.dnsmasq_pid is not None


def instance_healthy(found: InstanceFound | None, instance: Instance) -> bool:
    """The instance's namespace present and the DHCP clients its subnets need (and no other) alive in it."""
    if found is None or not found.ns:
        return False
    spec = instance_spec(instance)
    return (found.udhcpc_pid is not None) == spec.dhcpv4 and (found.dhcpcd_pid is not None) == spec.dhcpv6


def reconcile(node: str | None = None) -> ReconcileReport:
    """Run the steps above for ``node`` (default: this node) and report what was found and done."""
    node = node or settings.NETDASH_NODE
    started = time.monotonic()
    report = ReconcileReport()
    try:
        convergence.ensure_underlay()
    except Exception as exc:  # the networks without a tunnel still converge
        report.errors.append(f"underlay: {failure_reason(exc)}")
    scan = driver().scan_host()
    networks = list(networks_on(node).select_related("tenant")
                    .prefetch_related("subnets", "instances__network", "instances__subnet", "instances__ipv6_subnet",
                                      "dhcp_servers")
                    .order_by("pk"))
    todo: list[Network] = []
    healthy: list[Network] = []
    for network in networks:
        try:
            if _finish_deletions(network, report):
                continue
            (todo if _needs_realise(network, scan, report) else healthy).append(network)
        except Exception as exc:  # one broken network must not stop the others converging
            report.errors.append(f"{network.name}: {failure_reason(exc)}")
    for start in range(0, len(todo), BATCH):
        _realise_batch(todo[start:start + BATCH], report)
    try:
        convergence.sync_if_leased([n for n in healthy if serves_dhcp(n, node)])
    except Exception as exc:
        report.errors.append(f"lease sync: {failure_reason(exc)}")
    _converge_tunnels(healthy, report)
    _converge_routers(node, report)
    _remove_orphans(node, report)
    metrics.reconcile_finished(node, seconds=time.monotonic() - started, changes=report.change_count,
                               errors=len(report.errors))
    return report


def _converge_routers(node: str, report: ReconcileReport) -> None:
    """Step 5: finish router deletions, realise every other router of the node (idempotent on the host)."""
    for router in Router.objects.filter(node=node).order_by("pk"):
        try:
            if router.status == ObjectStatus.DELETING:
                router_convergence.destroy_router(router.pk)
                report.destroyed_routers.append(router.name)
            else:
                router_convergence.realise_router(router.pk)
                report.converged_routers.append(router.name)
        except Exception as exc:  # one broken router must not stop the others
            report.errors.append(f"router {router.name}: {failure_reason(exc)}")


def _converge_tunnels(networks: list[Network], report: ReconcileReport) -> None:
    """Step 4: the VXLAN port and flood list of each healthy network whose lock is free (a busy one is being
    realised, which converges its tunnel too); idempotent, so a matching tunnel is left as it is."""
    with free_network_locks([n.pk for n in networks]) as taken:
        for network in (n for n in networks if n.pk in set(taken)):
            try:
                convergence.converge_tunnel(network)
            except Exception as exc:
                report.errors.append(f"{network.name} tunnel: {failure_reason(exc)}")


def _finish_deletions(network: Network, report: ReconcileReport) -> bool:
    """Step 1: tear down the network if it is being deleted (True), else its instances being deleted."""
    if network.status == ObjectStatus.DELETING:
        convergence.destroy_network(network.pk)  # the first one takes the node's other deleting networks along
        report.destroyed_networks.append(network.name)
        return True
    for instance in [i for i in network.instances.all()
                     if i.status == ObjectStatus.DELETING and instance_node(i) == settings.NETDASH_NODE]:
        convergence.destroy_instance(instance.pk)
        report.destroyed_instances.append(instance.hostname)
    return False


def _needs_realise(network: Network, scan: HostScan, report: ReconcileReport) -> bool:
    """Step 2: whether the network or one of its live instances is not as the database wants it."""
    live = [i for i in network.instances.all()
            if i.status != ObjectStatus.DELETING and instance_node(i) == settings.NETDASH_NODE]
    sick = [i for i in live if not instance_healthy(scan.instances.get(i.kernel_id), i)]
    healthy = (network.status == ObjectStatus.ACTIVE and not sick
               and network_healthy(scan.networks.get(network.kernel_id), network))
    if not healthy:
        report.realised_instances.extend(i.hostname for i in sick)
    return not healthy


def _realise_batch(chunk: list[Network], report: ReconcileReport) -> None:
    """Step 3: realise the networks whose lock is free together, each of the others with its own job."""
    by_pk = {n.pk: n for n in chunk}
    with free_network_locks(list(by_pk)) as taken:
        batch = [n for n in convergence.load_networks(taken) if n.status != ObjectStatus.DELETING]
        failed = convergence.realise_networks(batch, force={n.pk for n in batch})
    for n in batch:
        if n.pk in failed:
            report.errors.append(f"{n.name}: {failure_reason(failed[n.pk])}")
        else:
            report.realised_networks.append(n.name)
    for pk in set(by_pk) - set(taken):
        try:
            convergence.realise_network(pk, force=True)
            report.realised_networks.append(by_pk[pk].name)
        except Exception as exc:
            report.errors.append(f"{by_pk[pk].name}: {failure_reason(exc)}")


def _remove_orphans(node: str, report: ReconcileReport) -> None:
    """Step 6: anything with our prefix the database no longer wants (re-read: the steps above deleted rows).

    The host is scanned before the database is read: a network another node's agent realises meanwhile is then
    either missing from the scan or already in the database as that node's.
    """
    scan = driver().scan_host()
    present = networks_on(node)
    wanted = Network.objects.filter(pk__in=present.values("pk")).exclude(status=ObjectStatus.DELETING)
    wanted_networks = set(wanted.values_list("kernel_id", flat=True))
    mine = instances_on(node)
    wanted_instances = set(mine.filter(network__in=wanted).exclude(status=ObjectStatus.DELETING)
                           .values_list("kernel_id", flat=True))
    # Another node's routers (same prefix on one machine) are that node's agent's to converge: never orphans here.
    wanted_routers = set(Router.objects.filter(node=node).exclude(status=ObjectStatus.DELETING)
                         .values_list("kernel_id", flat=True))
    wanted_routers |= set(Router.objects.exclude(node=node).values_list("kernel_id", flat=True))
    before = driver().remove_orphans(
        wanted_networks, wanted_instances, wanted_routers=wanted_routers, scan=scan,
        foreign_networks=set(Network.objects.exclude(pk__in=present.values("pk")).values_list("kernel_id", flat=True)),
        foreign_instances=set(Instance.objects.exclude(pk__in=mine.values("pk")).values_list("kernel_id", flat=True)),
    )
    report.removed_orphans = sorted(
        [f"network {k}" for k in before.networks if k not in wanted_networks]
        + [f"instance {k}" for k in before.instances if k not in wanted_instances]
        + [f"router {k}" for k in before.routers if k not in wanted_routers]
        + [f"stray pid {p}" for pids in before.stray_pids.values() for p in pids]
    )
