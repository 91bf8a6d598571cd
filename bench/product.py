"""The six measurements of netdash itself, driven through the services (what the pages and the API call).

Everything real: services write SQLite rows and enqueue after commit; the agents (``manage.py agent``
subprocesses: RQ SimpleWorker + lease watcher) realise networks; dnsmasq hands out real leases to udhcpc in
instance namespaces; lease rows come from the agent's lease watcher; events travel through the channel layer to
a websocket client connected to daphne. Times are ``perf_counter`` in this process, from the first service call.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import QuerySet

from tenants import services
from tenants.choices import LeaseState, ObjectStatus
from tenants.host import netns
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, Network, Tenant
from tenants.queue import agent_queue

from . import memory
from .contender import kill_everything
from .stack import Stack
from .stats import summary, wait_for

CIDR = "10.0.0.0/24"
_slug = itertools.count(1)


def new_tenant(label: str) -> Tenant:
    n = next(_slug)
    return services.tenant_create(name=f"bench {label} {n}", slug=f"bench-{label}-{n}", quota_networks=100_000,
                                  quota_subnets=100_000, quota_instances=100_000)


def _check_errors(networks: QuerySet[Network]) -> None:
    bad = networks.filter(status=ObjectStatus.ERROR).first()
    if bad is not None:
        raise RuntimeError(f"network {bad.name} failed: {bad.status_reason}")


def _lease_ip(inst: Instance) -> str | None:
    lease = driver().instance_lease(inst.kernel_id)
    return str(lease.ip) if lease is not None else None


def _queue_idle() -> bool:
    """No job of the bench node's queue is waiting or running."""
    queue = agent_queue(settings.NETDASH_NODE)
    return queue.count == 0 and queue.started_job_registry.count == 0


class Product:
    """netdash measured end to end on a running stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.d = driver()

    # -- 1. create -> lease -> event ---------------------------------------------------------------------
    def latency(self, n: int, timeout: float = 30.0) -> dict[str, Any]:
        tenant = new_tenant("lat")
        listener = self.stack.listener(tenant.pk)
        kind = type(listener).__name__
        to_ns, to_row, to_event, submit = [], [], [], []
        try:
            for i in range(n):
                t0 = time.perf_counter()
                net = services.network_create(tenant=tenant, name=f"lat{i}", subnet={"cidr": CIDR})
                inst = services.instance_create(network=net, hostname=f"lat{i}")
                submit.append(time.perf_counter() - t0)
                got: dict[str, float] = {}
                deadline = t0 + timeout
                while len(got) < 3:
                    now = time.perf_counter()
                    if "ns" not in got and _lease_ip(inst) == inst.ip_address:
                        got["ns"] = now
                    if "row" not in got and Lease.objects.filter(instance_id=inst.pk, state=LeaseState.ACTIVE,
                                                                 ip_address=inst.ip_address).exists():
                        got["row"] = time.perf_counter()
                    while not listener.frames.empty():
                        at, frame = listener.frames.get_nowait()
                        data = frame.get("data") or {}
                        if frame.get("event") == "lease.added" and data.get("mac_address") == inst.mac_address:
                            got["event"] = at
                    if now > deadline:
                        _check_errors(Network.objects.filter(pk=net.pk))
                        raise TimeoutError(f"latency sample {i}: only {sorted(got)} within {timeout:.0f} s")
                    time.sleep(0.001)
                to_ns.append(got["ns"] - t0)
                to_row.append(got["row"] - t0)
                to_event.append(got["event"] - t0)
        finally:
            listener.close()
        self.remove_tenant(tenant)
        return {"lease_in_namespace": summary(to_ns), "lease_row": summary(to_row),
                "lease_event": summary(to_event), "service_calls": summary(submit), "event_client": kind}

    def remove_tenant(self, tenant: Tenant, timeout: float = 300.0) -> None:
        """Delete a figure's tenant and wait until it is gone, as the baselines tear down after each figure:
        a later reconcile must rebuild the same networks and instances as theirs, not these too (the 30 latency
        networks and the burst's 20 instances made reconcile of 20 networks look 5x the floor)."""
        services.tenant_delete(tenant=tenant)
        wait_for(lambda: not Tenant.objects.filter(pk=tenant.pk).exists(), timeout, 0.02, "tenant removed")

    # -- 2. realise N networks ---------------------------------------------------------------------------
    def realise(self, n: int, *, bulk: bool = True, timeout: float = 600.0) -> dict[str, Any]:
        """``bulk``: one ``network_create_many`` call (what a POSTed list does); else one ``network_create`` per
        network (what a form or a single API POST does)."""
        tenant = new_tenant(f"n{n}{'b' if bulk else 'e'}")
        items = [{"name": f"n{i}", "subnet": {"cidr": CIDR}} for i in range(n)]
        mem0 = memory.settled_mem_available_kb()
        t0 = time.perf_counter()
        if bulk:
            nets = services.network_create_many(tenant=tenant, networks=items)
        else:
            nets = [services.network_create(tenant=tenant, **item) for item in items]
        probe = services.instance_create(network=nets[-1], hostname="probe")
        t_submitted = time.perf_counter()

        # The polls are per tenant, not ``pk__in`` the ids: building a 1,000-id IN clause every 20 ms took 60 % of
        # a core, which the agent then lacked on a 2-core machine (py-spy of a run); the floors poll nothing.
        mine = Network.objects.filter(tenant=tenant)

        def all_active() -> bool:
            _check_errors(mine)
            return not mine.exclude(status=ObjectStatus.ACTIVE).exists()

        t_active = wait_for(all_active, timeout, 0.02, f"{n} networks active")
        t_lease = wait_for(lambda: _lease_ip(probe) == probe.ip_address, timeout, 0.002, "probe lease")
        wall = max(t_active, t_lease) - t0
        # The jobs of networks another job already realised still run (each finds its network up and returns);
        # the next figure starts once they are done, and their cost is reported, not hidden in the next figure.
        t_drained = wait_for(_queue_idle, timeout, 0.05, "agent queue drained")
        # Memory once everything is up: every dnsmasq's PSS, and what the machine lost.
        time.sleep(0.5)
        pids = [self.d.dnsmasq_pid(x.kernel_id) for x in nets]
        mem1 = memory.settled_mem_available_kb()
        agents = [a.pid for a in self.stack.agents]
        return {
            "n": n, "wall": wall, "per_second": n / wall, "submit": t_submitted - t0,
            "all_active": t_active - t0, "last_lease": t_lease - t0, "queue_drained": t_drained - t0,
            "memory": {"dnsmasq_pss_kb_per_network": memory.total_pss_kb(pids) / n,
                       "dnsmasq_running": sum(p is not None for p in pids),
                       "mem_available_drop_kb_per_network": (mem0 - mem1) / n,
                       "agent_rss_kb": sum(map(memory.rss_kb, agents)),
                       "agent_pss_kb": memory.total_pss_kb(agents)},
            "tenant": tenant.pk,
        }

    def add_instances(self, tenant_id: int, k: int, timeout: float = 120.0) -> list[Instance]:
        """Spread ``k`` instances over the tenant's networks and wait until each holds its lease."""
        nets = list(Network.objects.filter(tenant_id=tenant_id).order_by("id"))
        step = max(1, len(nets) // max(k, 1))
        made = [services.instance_create(network=nets[(j * step) % len(nets)], hostname=f"r{j}") for j in range(k)]
        wait_for(lambda: all(_lease_ip(i) == i.ip_address for i in made), timeout, 0.01, "instances leased")
        return made

    # -- 4. reconcile after a simulated reboot -----------------------------------------------------------
    def reconcile(self, tenant_id: int, timeout: float = 600.0) -> dict[str, Any]:
        nets = list(Network.objects.filter(tenant_id=tenant_id))
        insts = list(Instance.objects.filter(network__tenant_id=tenant_id))
        before = {i.pk: _lease_ip(i) for i in insts}
        assert all(before.values()), "every instance must hold a lease before the reboot"
        self.stack.stop_agents()
        kill_everything(self.d, keep_state=True)
        assert not [x for x in netns.list_names() if x.startswith(self.d.config.prefix)]
        close_old_connections()
        t0 = time.perf_counter()
        self.stack.start_agents(timeout=timeout)  # the start-up reconcile runs before the worker registers
        t_agent = time.perf_counter()

        def converged() -> bool:
            if any(_lease_ip(i) != before[i.pk] for i in insts):
                return False
            return all(self.d.dnsmasq_pid(x.kernel_id) is not None for x in nets)

        t_end = wait_for(converged, timeout, 0.01, "reconcile converged")
        statuses = set(Network.objects.filter(pk__in=[x.pk for x in nets]).values_list("status", flat=True))
        return {"networks": len(nets), "instances": len(insts), "wall": t_end - t0,
                "agent_ready": t_agent - t0, "same_ips": True, "statuses": sorted(statuses)}

    # -- 5. teardown -------------------------------------------------------------------------------------
    def teardown(self, tenant_id: int, timeout: float = 600.0) -> dict[str, Any]:
        nets = list(Network.objects.filter(tenant_id=tenant_id).select_related("tenant"))
        kids = {x.kernel_id for x in nets}
        t0 = time.perf_counter()
        services.network_delete_many(networks=nets)  # what a bulk DELETE or a tenant's deletion calls
        t_submitted = time.perf_counter()

        def gone() -> bool:
            # Rows go after the host teardown: poll the one cheap query until then, the namespaces once after.
            if Network.objects.filter(tenant_id=tenant_id).exists():  # per tenant: see ``realise``
                return False
            return not any(p is not None and p[1] in kids for p in map(self.d.names.parse_ns, netns.list_names()))

        t_end = wait_for(gone, timeout, 0.01, "teardown")
        left = [k for k in kids if self.d.names.net_dir(k).exists()]
        return {"n": len(nets), "wall": t_end - t0, "submit": t_submitted - t0,
                "per_second": len(nets) / (t_end - t0), "state_left": len(left)}

    # -- 3. burst of M instances on one network ----------------------------------------------------------
    def burst(self, m: int, timeout: float = 300.0, *, bulk: bool = True) -> dict[str, Any]:
        """M instances on one network: one ``instance_create_many`` call (a POSTed list), or ``bulk=False`` one
        ``instance_create`` each (a script looping over the API)."""
        tenant = new_tenant(f"b{m}{'' if bulk else 'e'}")
        net = services.network_create(tenant=tenant, name="burst", subnet={"cidr": CIDR})
        wait_for(lambda: Network.objects.get(pk=net.pk).status == ObjectStatus.ACTIVE, 30, 0.01, "burst network")
        t0 = time.perf_counter()
        names = [f"b{k}" for k in range(m)]
        insts = (services.instance_create_many(network=net, items=[{"hostname": h} for h in names]) if bulk
                 else [services.instance_create(network=net, hostname=h) for h in names])
        t_submitted = time.perf_counter()
        leased: dict[int, float] = {}

        def all_leased() -> bool:
            now = time.perf_counter()
            for i in insts:
                if i.pk not in leased and _lease_ip(i) == i.ip_address:
                    leased[i.pk] = now
            _check_errors(Network.objects.filter(pk=net.pk))
            return len(leased) == m

        # Every 5 ms (< 0.3 % of the smallest burst's wall): each poll reads the lease file of every instance
        # still waiting, which at 2 ms and 200 instances took CPU from the agent it is timing.
        t_all = wait_for(all_leased, timeout, 0.005, f"{m} instances leased")
        t_rows = wait_for(lambda: Lease.objects.filter(instance__in=insts, state=LeaseState.ACTIVE).count() == m,
                          timeout, 0.005, "lease rows")
        per = [leased[i.pk] - t0 for i in insts]
        self.remove_tenant(tenant)
        return {"m": m, "wall": t_all - t0, "submit": t_submitted - t0, "rows": t_rows - t0,
                "per_instance": summary(per)}
