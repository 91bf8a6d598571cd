"""The host agent: one per network node. An RQ worker plus four small loops.

- registration and heartbeat: the node's row says which node this is and that it is alive (scheduling only
  sends new work to nodes with a fresh heartbeat); with each heartbeat it also marks silent nodes down and moves
  their DHCP duties to live nodes (``failover.nodes_fail_over``: every agent may, it is idempotent);
- start-up reconcile: after a reboot or crash the host is rebuilt from the database before any job runs;
- lease watcher: one inotify instance over every network's lease file → ``lease_sync`` within milliseconds;
- process monitor (like Neutron's ProcessMonitor): a dnsmasq or DHCP client that died is restarted within a
  second or two, without anyone acting;
- periodic reconcile: catches everything else (lost jobs after a Redis restart, orphans);
- periodic jobs (``NETDASH_AGENT_PERIODIC_JOBS``): apps above tenants, such as the lab sweep, named by dotted path.

Why ``SimpleWorker``: jobs run in this process, no fork per job (MEASURED: 280–400 jobs/s vs 65 forking), and
the driver's netlink handles are reused. A job that crashes the process is recovered by the start-up reconcile.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from prometheus_client import start_http_server
from redis.exceptions import RedisError
from rq import SimpleWorker, worker_registration

from . import failover, jobs, metrics, nodes
from .choices import LeaseState, ObjectStatus
from .host.leases import LeaseWatcher
from .host.process import RESTART_BACKOFF, RestartBackoff
from .hostspecs import check_underlay, driver, host_config, instance_spec
from .models import Instance, Lease, Network
from .queue import agent_queue, enqueue_now
from .scheduling import instances_on, networks_on, networks_served_by

log = logging.getLogger(__name__)

MONITOR_INTERVAL = 1.0
WORKER_RETRY_MIN = 0.5  # seconds before a new job worker is started after Redis went away; doubles up to MAX
WORKER_RETRY_MAX = 10.0
ERROR_RETRY_BACKOFF = 15.0
WATCH_REFRESH = 1.0
# How often the lease watcher looks for new networks' state directories (a listdir, no database query).
WATCH_DISCOVER = 0.05


class Agent:
    """Runs the loops in daemon threads and the RQ worker in the calling thread."""

    def __init__(self, *, node: str | None = None, reconcile_interval: float | None = None) -> None:
        self.node = node or settings.NETDASH_NODE
        self.reconcile_interval = reconcile_interval or settings.NETDASH_RECONCILE_SECONDS
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.driver = driver()
        self.restarts = RestartBackoff()  # a dead daemon's restart is asked for once per backoff

    # -- loops -------------------------------------------------------------------------------------------
    def _loop(self, name: str, body, interval: float) -> None:
        while not self.stop.is_set():
            try:
                body()
            except Exception:
                log.exception("agent %s loop failed; continuing", name)
            finally:
                close_old_connections()
            self.stop.wait(interval)

    def watch_leases(self) -> None:
        """Turn lease-file changes into Lease rows and events (one inotify instance for all networks).

        The watcher only says *which* network changed; ``lease_sync`` then diffs the whole file against the
        database, so a change that happened before a directory was watched is never lost.
        """
        names = self.driver.names
        with LeaseWatcher() as watcher:
            watched: set[str] = set()
            unknown: set[str] = set()  # directories of networks that are not (or no longer) ours to watch
            next_refresh = 0.0
            while not self.stop.is_set():
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + WATCH_REFRESH
                    unknown.clear()
                    current = {n.kernel_id: n for n in networks_served_by(self.node)
                               .exclude(status=ObjectStatus.DELETING)}
                    self._watch([current[k] for k in set(current) - watched if names.net_dir(k).is_dir()],
                                watcher, watched)
                    for kid in watched - set(current):
                        watcher.remove(kid)
                        watched.discard(kid)
                    close_old_connections()
                # A realise job makes a network's directory ~0.1 s before its first lease; waiting for the next
                # refresh (up to a second) put that lease's row and event late, so look for new ones every turn.
                if new := self._new_network_dirs(watched | unknown):
                    found = self._serving(new)
                    unknown.update(set(new) - {n.kernel_id for n in found})
                    self._watch(found, watcher, watched)
                changed = {event.network for event in watcher.poll(timeout=WATCH_DISCOVER)}
                for kid in changed:
                    if not names.net_dir(kid).is_dir():
                        watcher.remove(kid)
                        watched.discard(kid)
                if changed:
                    for network in Network.objects.filter(kernel_id__in=changed).exclude(status=ObjectStatus.DELETING):
                        self._sync(network)

    def _serving(self, kernel_ids: list[str]) -> list[Network]:
        """Those of ``kernel_ids`` whose dnsmasq this node runs and that are not being deleted (one query)."""
        return list(networks_served_by(self.node).filter(kernel_id__in=kernel_ids)
                    .exclude(status=ObjectStatus.DELETING))

    def _watch(self, networks: list[Network], watcher: LeaseWatcher, watched: set[str]) -> None:
        """Watch these networks' directories, then sync those with something to sync.

        Why not sync every one: a bulk realise makes hundreds of directories whose lease files are still empty,
        and a sync is a transaction of six queries; at 1,000 networks those syncs held the GIL for a quarter of
        the agent's time, beside the realise job (py-spy). The file is read after the watch is added, so a lease
        written later is an inotify event; one written before is in the file and synced here; a network whose
        rows still say "leased" while its file is empty (a wiped host) is synced to end them.
        """
        if not networks:
            return
        names = self.driver.names
        for network in networks:
            watcher.add(network.kernel_id, names.net_dir(network.kernel_id))
            watched.add(network.kernel_id)
        leased = set(Lease.objects.filter(subnet__network__in=networks, state=LeaseState.ACTIVE)
                     .values_list("subnet__network", flat=True))
        for network in networks:
            if network.pk in leased or any(e.expiry != 0 for e in self.driver.network_leases(network.kernel_id)):
                self._sync(network)

    def _new_network_dirs(self, known: set[str]) -> list[str]:
        """Kernel ids of network state directories on disk that are not in ``known``."""
        try:
            entries = os.listdir(self.driver.config.state_dir)
        except FileNotFoundError:
            return []
        found = (self.driver.names.parse_ns(e) for e in entries)
        return [kid for kind, kid in filter(None, found) if kind == "qdhcp" and kid not in known]

    def _sync(self, network: Network) -> None:
        try:
            jobs.sync_leases(network)
        except Exception:
            log.exception("lease sync for %s failed", network)

    def monitor_processes(self) -> None:
        """Restart dead dnsmasq / DHCP clients of active networks, and retry networks left in error.

        Each restart is a realise job; one already asked for is not asked again until its backoff passes, so a
        job waiting in the queue behind a long batch is not enqueued once a second.
        """
        # One query, not one per network: at 500 networks the per-network EXISTS made this loop a quarter of the
        # agent's CPU time (bench profile, py-spy), competing with the worker for the GIL on a 2-core node.
        serving = networks_served_by(self.node).filter(status=ObjectStatus.ACTIVE, subnets__enable_dhcp=True)
        for network in serving:
            if self.driver.dnsmasq_pid(network.kernel_id) is None and self._restart(
                    "tenants.jobs.realise_network", network.pk, f"dnsmasq of {network} is not running; restarting"):
                metrics.daemon_restarted(self.node, "dnsmasq")
        for network in networks_on(self.node).filter(status=ObjectStatus.ERROR):
            # A transient failure (e.g. an address still held by a dying dnsmasq) heals without waiting for the
            # periodic reconcile; a persistent one is retried at a slow pace, its reason staying visible.
            self._restart("tenants.jobs.realise_network", network.pk,
                          f"{network} is in error ({network.status_reason}); retrying", backoff=ERROR_RETRY_BACKOFF)
        instances = instances_on(self.node).filter(network__status=ObjectStatus.ACTIVE, status=ObjectStatus.ACTIVE
                                                   ).select_related("network", "subnet", "ipv6_subnet")
        for instance in instances:
            if not self._clients_alive(instance) and self._restart(
                    "tenants.jobs.realise_instance", instance.pk,
                    f"DHCP client of {instance} is not running; restarting"):
                metrics.daemon_restarted(self.node, "dhcp_client")

    def _clients_alive(self, instance: Instance) -> bool:
        """Every DHCP client the instance's subnets need runs (udhcpc for v4, dhcpcd for DHCPv6)."""
        spec = instance_spec(instance)
        return ((not spec.dhcpv4 or self.driver.udhcpc_pid(instance.kernel_id) is not None)
                and (not spec.dhcpv6 or self.driver.dhcpcd_pid(instance.kernel_id) is not None))

    def _restart(self, func: str, pk: int, why: str, *, backoff: float = RESTART_BACKOFF) -> bool:
        """Ask for ``func(pk)`` unless asked within ``backoff``; True when it was asked for now."""
        if not self.restarts.due((func, pk), backoff):
            return False
        log.warning(why)
        enqueue_now(func, pk, node=self.node)
        return True

    def register(self) -> None:
        """Create or refresh this node's row from its settings (VTEP address, roles)."""
        check_underlay()  # a bad NETDASH_UNDERLAY_DEVICE stops the agent here, with the fix, not at a first tunnel
        nodes.node_register(name=self.node, vtep_address=settings.NETDASH_NODE_VTEP,
                            roles=settings.NETDASH_NODE_ROLES)

    def heartbeat(self) -> None:
        if not nodes.node_heartbeat(self.node):
            log.warning("node %s has no row (deleted?); registering it again", self.node)
            self.register()
        if dead := failover.nodes_fail_over():
            log.warning("nodes %s missed their heartbeats: marked down, their DHCP duties moved", ", ".join(dead))

    def sign_off(self) -> None:
        """A clean stop: the node stops looking alive now, not NETDASH_NODE_DEAD_SECONDS later."""
        try:
            nodes.node_signed_off(self.node)
        except DatabaseError as exc:
            log.warning("could not sign node %s off: %s", self.node, exc)

    def schedule_reconcile(self) -> None:
        enqueue_now("tenants.jobs.reconcile", self.node, node=self.node)

    def _periodic_loops(self) -> dict[str, Callable[[], None]]:
        """One loop per ``NETDASH_AGENT_PERIODIC_JOBS`` entry, enqueueing that job for this node's worker."""
        return {
            f"periodic-{func}": (lambda func=func, every=every:
                                 self._loop(func, lambda: enqueue_now(func, node=self.node), every))
            for func, every in settings.NETDASH_AGENT_PERIODIC_JOBS.items()
        }

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start_loops(self) -> None:
        loops = {
            "heartbeat": lambda: self._loop("heartbeat", self.heartbeat, settings.NETDASH_NODE_HEARTBEAT_SECONDS),
            "leases": lambda: self._loop("leases", self.watch_leases, 1.0),
            "monitor": lambda: self._loop("monitor", self.monitor_processes, MONITOR_INTERVAL),
            "reconcile": lambda: self._loop("reconcile", self.schedule_reconcile, self.reconcile_interval),
            **self._periodic_loops(),
        }
        for name, target in loops.items():
            thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def run(self, *, burst: bool = False) -> None:
        """Reconcile once, then serve jobs until stopped (or until the queue is empty with ``burst``)."""
        host_config().state_dir.mkdir(parents=True, exist_ok=True)
        self.register()
        server = self.serve_metrics()
        report = jobs.reconcile(self.node)
        for line in report.lines():
            log.info("start-up reconcile: %s", line)
        self.start_loops()
        try:
            self.serve_jobs(burst=burst)
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=3)
            self.sign_off()
            if server is not None:
                server.shutdown()

    def serve_metrics(self):
        """Serve this agent's own ``/metrics`` (restarts, reconcile, lease latency) on 127.0.0.1 only, when
        ``NETDASH_AGENT_METRICS_PORT`` is set; the figures in the database are the web ``/metrics``'s."""
        port = settings.NETDASH_AGENT_METRICS_PORT
        if not port:
            return None
        server, _ = start_http_server(port, addr="127.0.0.1")
        log.info("agent metrics on http://127.0.0.1:%d/metrics", port)
        return server

    def serve_jobs(self, *, burst: bool = False) -> None:
        """Run the RQ worker; when Redis goes away, start a new worker once it is back.

        Why the loop: RQ retries a failed dequeue, but a Redis error anywhere else (recording a finished job,
        a heartbeat) makes ``work()`` log "unhandled exception, quitting" and return. The fault drill that
        restarts Redis saw the whole agent exit with it, lease watcher and monitor included. Only a stop request
        (SIGTERM/SIGINT) or ``burst`` ends this loop.
        """
        backoff = WORKER_RETRY_MIN
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                queue = agent_queue(self.node)
                worker = AgentWorker([queue], connection=queue.connection, on_stop=self.stop.set)
                worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
            except (RedisError, OSError) as exc:  # e.g. registering the worker while Redis is down
                log.warning("job worker could not run: %s", exc)
            if burst or self.stop.is_set():
                return
            # Between workers, a SIGTERM/SIGINT must still stop the agent (the next worker installs its own).
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop.set())
            if time.monotonic() - started > WORKER_RETRY_MAX:
                backoff = WORKER_RETRY_MIN
            log.warning("job worker stopped (Redis unavailable?); starting a new one in %.1f s", backoff)
            self.stop.wait(backoff)
            backoff = min(backoff * 2, WORKER_RETRY_MAX)


class AgentWorker(SimpleWorker):
    """The agent's RQ worker: tells the agent when it was asked to stop, so a stop is never mistaken for a
    Redis failure (after which the agent would start a new worker)."""

    def __init__(self, *args, on_stop, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._on_stop = on_stop

    def request_stop(self, signum, frame) -> None:
        self._on_stop()
        super().request_stop(signum, frame)

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """Heartbeat, and register again if Redis lost the registration.

        Why: Redis keeps nothing across a restart, and RQ's worker survives it (it retries the dequeue) but
        only refreshes ``last_heartbeat`` on a key that no longer lists its queues, in no workers set. Such an
        agent served jobs yet looked dead to readiness, metrics and scheduling until it was restarted
        (tests/faults/test_ops_probes.py).
        """
        super().heartbeat(timeout, pipeline)
        if pipeline is None and not self.connection.hexists(self.key, "birth"):
            log.warning("worker registration lost (Redis restarted?); registering again")
            self.birth_date = self.last_heartbeat
            with self.connection.pipeline() as again:
                again.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, again)
                again.expire(self.key, timeout or self.worker_ttl + 60)
                again.execute()

