"""Prometheus metrics: what an operator of a DHCP service graphs and alerts on.

Two kinds, for two reasons:

- figures that live in the database or Redis (networks and instances by status, leases and pool use per subnet,
  jobs per queue, agents up and their heartbeat age) are read at scrape time by :class:`StateCollector`, so every
  web worker answers the same and nothing is double counted when several run;
- figures that exist only inside one process are counted where they happen: the agent's daemon restarts, its
  last reconcile, the lease-file-change → publish latency (served by the agent's own ``/metrics``), and the
  websocket clients of one web process (each daphne worker reports its own; sum them).

Labels carry ids, never tenant names or CIDRs: the scrape is for operators, and an id is mapped in the admin.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator

import django_rq
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from .choices import LeaseState, ObjectStatus
from .liveness import agent_heartbeats
from .models import Instance, Lease, Network, Subnet

log = logging.getLogger(__name__)

# --- counted where they happen ------------------------------------------------------------------------------
DAEMON_RESTARTS = Counter("netdash_daemon_restarts", "Restarts of a dead dnsmasq or DHCP client asked for by "
                          "the agent's process monitor.", ["node", "daemon"])
RECONCILE_DURATION = Gauge("netdash_reconcile_last_duration_seconds", "Wall time of the last reconcile pass.",
                           ["node"])
RECONCILE_CHANGES = Gauge("netdash_reconcile_last_changes", "Objects realised, destroyed or removed as orphans "
                          "by the last reconcile pass.", ["node"])
RECONCILE_ERRORS = Gauge("netdash_reconcile_last_errors", "Errors reported by the last reconcile pass.", ["node"])
RECONCILE_FINISHED = Gauge("netdash_reconcile_last_finished_timestamp_seconds", "When the last reconcile pass "
                           "ended (Unix time).", ["node"])
# Buckets around the measured create → websocket event figures (p50 133 ms, p95 169 ms end to end, of which the
# file → publish part is a few ms): fine at the low end, and up to a reconcile period for a missed inotify event.
LEASE_PUBLISH_LATENCY = Histogram(
    "netdash_lease_publish_latency_seconds", "From dnsmasq writing its lease file to the lease event being sent "
    "to the channel layer.", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
WEBSOCKET_CLIENTS = Gauge("netdash_websocket_clients", "Websocket clients connected to this web process.",
                          ["consumer"])


def daemon_restarted(node: str, daemon: str) -> None:
    """Count one restart of ``daemon`` ("dnsmasq" or "dhcp_client") on ``node``."""
    DAEMON_RESTARTS.labels(node=node, daemon=daemon).inc()


def reconcile_finished(node: str, *, seconds: float, changes: int, errors: int) -> None:
    """Record the figures of the reconcile pass that just ended on ``node``."""
    RECONCILE_DURATION.labels(node=node).set(seconds)
    RECONCILE_CHANGES.labels(node=node).set(changes)
    RECONCILE_ERRORS.labels(node=node).set(errors)
    RECONCILE_FINISHED.labels(node=node).set_to_current_time()


def lease_published(changed_at: float, now: float) -> None:
    """One lease event sent ``now`` for a lease-file change made at ``changed_at`` (both Unix time)."""
    LEASE_PUBLISH_LATENCY.observe(max(0.0, now - changed_at))


# --- read at scrape time ------------------------------------------------------------------------------------
def _pool_size(subnet: Subnet) -> int:
    """Addresses IPAM may hand out in ``subnet``: its allocation pools, else every host address."""
    pools = subnet.pools
    if pools:
        return sum(int(end) - int(start) + 1 for start, end in pools)
    net = subnet.ip_network
    return max(net.num_addresses - (2 if net.version == 4 and net.prefixlen < 31 else 0), 0)


class StateCollector(Collector):
    """Reads the database and Redis on every scrape; a store that does not answer shows as ``*_up 0``."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._database()
        yield from self._redis()

    def _database(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("netdash_database_up", "1 when the database answered this scrape.")
        try:
            families = list(self._database_families())
        except DatabaseError as exc:
            log.warning("metrics: database unavailable: %s", exc)
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _database_families(self) -> Iterator[GaugeMetricFamily]:
        for model, name in ((Network, "networks"), (Instance, "instances")):
            family = GaugeMetricFamily(f"netdash_{name}", f"{name.capitalize()} by status.", labels=["status"])
            counts = dict(model.objects.values_list("status").annotate(n=Count("id")).order_by())
            for status in ObjectStatus.values:
                family.add_metric([status], counts.get(status, 0))
            yield family
        leases = GaugeMetricFamily("netdash_subnet_leases_active", "Active DHCP leases per subnet.",
                                   labels=["node", "network", "subnet"])
        size = GaugeMetricFamily("netdash_subnet_pool_size", "Addresses in a subnet's allocation pools.",
                                 labels=["node", "network", "subnet"])
        use = GaugeMetricFamily("netdash_subnet_pool_utilisation", "Active leases / pool size, 0-1.",
                                labels=["node", "network", "subnet"])
        active = Tally(dict(Lease.objects.filter(state=LeaseState.ACTIVE).values_list("subnet")
                            .annotate(n=Count("id")).order_by()))
        for subnet in Subnet.objects.select_related("network").prefetch_related("allocation_pools"):
            labels = [subnet.network.node, str(subnet.network_id), str(subnet.pk)]
            pool = _pool_size(subnet)
            leases.add_metric(labels, active[subnet.pk])
            size.add_metric(labels, pool)
            use.add_metric(labels, active[subnet.pk] / pool if pool else 0.0)
        yield from (leases, size, use)
        yield from self._agents(set(Network.objects.exclude(node="").values_list("node", flat=True).distinct()))

    def _agents(self, scheduled: set[str]) -> Iterator[GaugeMetricFamily]:
        """Agent up (1/0) for every node that has networks or a live agent; heartbeat age for the live ones."""
        try:
            beats = agent_heartbeats()
        except DatabaseError:
            return  # unknown, not "down": the database is what tells (the node rows)
        up = GaugeMetricFamily("netdash_agent_up", "1 when the node's agent is registered and heartbeating.",
                               labels=["node"])
        age = GaugeMetricFamily("netdash_agent_heartbeat_age_seconds", "Seconds since the agent's last heartbeat.",
                                labels=["node"])
        now = timezone.now()
        for node in sorted(scheduled | set(beats)):
            up.add_metric([node], 1 if node in beats else 0)
            if node in beats:
                age.add_metric([node], max(0.0, (now - beats[node]).total_seconds()))
        yield from (up, age)

    def _redis(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("netdash_redis_up", "1 when Redis answered this scrape.")
        jobs = GaugeMetricFamily("netdash_jobs", "Jobs per agent queue and state (queued, started, failed).",
                                 labels=["queue", "state"])
        try:
            connection = django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)
            for queue in Queue.all(connection=connection):
                jobs.add_metric([queue.name, "queued"], queue.count)
                jobs.add_metric([queue.name, "started"], StartedJobRegistry(queue=queue).count)
                jobs.add_metric([queue.name, "failed"], FailedJobRegistry(queue=queue).count)
        except RedisError as exc:
            log.warning("metrics: Redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, jobs)


_web_registry: CollectorRegistry | None = None


def web_registry() -> CollectorRegistry:
    """The web process's registry: this process's own metrics plus the database/Redis state, read per scrape."""
    global _web_registry
    if _web_registry is None:
        registry = CollectorRegistry()
        registry.register(StateCollector())
        registry.register(_ProcessMetrics())
        _web_registry = registry
    return _web_registry


class _ProcessMetrics(Collector):
    """The default registry's metrics (process, Python, the counters above) inside the web registry."""

    def collect(self):
        yield from REGISTRY.collect()


def web_metrics() -> bytes:
    """The web ``/metrics`` body in the Prometheus text format."""
    return generate_latest(web_registry())
