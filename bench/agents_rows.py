"""Bench row (issues 13 and 16): realise N networks with ONE agent, then with TWO agents on two simulated nodes.

The nodes are what ``NODES=2 make run`` starts: each agent its own ``NETDASH_NODE`` (``bench1``, ``bench2``),
kernel-name prefix (``b<tag>1-``, ``b<tag>2-``, see :func:`bench.supervisor.prefixes`, so the supervisor's cleanup
covers them), state directory and VTEP, with its underlay on the bench's own fabric (under the netdash prefix,
inside the project's namespaces: nothing in the root namespace). Networks get ONE DHCP server each
(``NETDASH_DHCP_SERVERS_PER_NETWORK=1``), so the scheduler spreads them over the two dhcp nodes and the agents
split the work; with the default two servers, both agents would serve every network and have nothing to split.

Each phase is the realise figure's measurement (one bulk ``network_create_many`` call plus a probe instance,
timed until every network is active and the probe holds its lease), then a teardown through the services. The
bench's own agent is stopped first (it signs its node off, so nothing is scheduled to it); the row runs last,
after every other figure, and leaves the nodes' rows signed off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from django.test import override_settings
from rq import Worker

from tenants import services
from tenants.choices import ObjectStatus
from tenants.host import HostDriver, netns
from tenants.models import Instance, Network, Node
from tenants.nodes import live_nodes
from tenants.queue import agent_queue

from . import supervisor
from .product import CIDR, new_tenant
from .stack import Stack
from .stats import wait_for

NODES = ("bench1", "bench2")
VTEP = {"bench1": "10.250.0.1", "bench2": "10.250.0.2"}  # on the bench's fabric (a project namespace) only
KEYS = {"bench1": "node1", "bench2": "node2"}  # supervisor.prefixes() / drivers() keys
LABEL = "one DHCP server per network"


def node_env(node: str) -> dict[str, str]:
    """The environment of ``node``'s agent, as scripts/run.sh's ``node_env`` gives it (both nodes dhcp+compute)."""
    return {"NETDASH_NODE": node, "NETDASH_PREFIX": supervisor.prefixes()[KEYS[node]],
            "NETDASH_FABRIC_PREFIX": supervisor.prefixes()["netdash"], "NETDASH_NODE_VTEP": VTEP[node],
            "NETDASH_NODE_ROLES": "dhcp,compute", "NETDASH_DHCP_SERVERS_PER_NETWORK": "1",
            "NETDASH_NODE_HEARTBEAT_SECONDS": "1"}


def _registered(node: str) -> bool:
    queue = f"agent-{node}"
    conn = agent_queue(node).connection
    return (live_nodes().filter(name=node).exists()
            and any(queue in w.queue_names() for w in Worker.all(connection=conn)))


class Nodes:
    """The simulated nodes' agent processes (pids recorded for the supervisor), started one by one."""

    def __init__(self, stack: Stack, drivers: dict[str, HostDriver]) -> None:
        self.stack = stack
        self.drivers = {node: drivers[KEYS[node]] for node in NODES}
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, node: str, timeout: float = 60.0) -> float:
        t0 = time.perf_counter()
        env = {**os.environ, **node_env(node)}
        log = open(self.stack.run_dir / f"agent-{node}.log", "ab")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen([sys.executable, str(supervisor.ROOT / "manage.py"), "agent"], stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=supervisor.ROOT, env=env)
        supervisor.record_pid(self.stack.run_dir, p.pid)
        self.agents[node] = p

        def up() -> bool:
            if p.poll() is not None:
                raise RuntimeError(f"agent {node} exited with {p.returncode}; see agent-{node}.log")
            return _registered(node)

        wait_for(up, timeout, 0.05, f"agent {node} registered")
        return time.perf_counter() - t0

    def stop(self) -> None:
        """Stop every agent (each signs its node off), then remove what they left on the host (nothing, after
        the teardowns) and their underlays."""
        for p in self.agents.values():
            p.terminate()
        for p in self.agents.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.agents.clear()
        for d in self.drivers.values():
            d.remove_orphans(set(), set())
            d.remove_overlay()

    def lease_ip(self, inst: Instance) -> str | None:
        node = Instance.objects.filter(pk=inst.pk).values_list("node", flat=True).first()
        held = self.drivers[node].instance_lease(inst.kernel_id) if node in self.drivers else None
        return str(held.ip) if held is not None else None

    def namespaces(self, kids: set[str]) -> list[str]:
        out = []
        for name in netns.list_names():
            for d in self.drivers.values():
                parsed = d.names.parse_ns(name)
                if parsed is not None and parsed[1] in kids:
                    out.append(name)
        return out


def _phase(nodes: Nodes, n: int, agents: int, timeout: float) -> dict[str, Any]:
    tenant = new_tenant(f"a{agents}n{n}")
    items = [{"name": f"n{i}", "subnet": {"cidr": CIDR}} for i in range(n)]
    t0 = time.perf_counter()
    nets = services.network_create_many(tenant=tenant, networks=items)
    probe = services.instance_create(network=nets[-1], hostname="probe")
    t_submitted = time.perf_counter()
    ids = [x.pk for x in nets]

    def all_active() -> bool:
        bad = Network.objects.filter(pk__in=ids, status=ObjectStatus.ERROR).first()
        if bad is not None:
            raise RuntimeError(f"network {bad.name} failed: {bad.status_reason}")
        return Network.objects.filter(pk__in=ids, status=ObjectStatus.ACTIVE).count() == n

    t_active = wait_for(all_active, timeout, 0.02, f"{n} networks active ({agents} agents)")
    t_lease = wait_for(lambda: nodes.lease_ip(probe) == probe.ip_address, timeout, 0.002, "probe lease")
    wall = max(t_active, t_lease) - t0
    per_node = Counter(Network.objects.filter(pk__in=ids).values_list("node", flat=True))
    probe_node = Instance.objects.filter(pk=probe.pk).values_list("node", flat=True).first()
    # Teardown (not part of the figure): the next phase starts from an empty host.
    kids = set(Network.objects.filter(pk__in=ids).values_list("kernel_id", flat=True))
    services.tenant_delete(tenant=tenant)
    wait_for(lambda: not Network.objects.filter(pk__in=ids).exists() and not nodes.namespaces(kids), timeout,
             0.02, "row's networks removed")
    return {"n": n, "agents": agents, "wall": wall, "submit": t_submitted - t0, "all_active": t_active - t0,
            "last_lease": t_lease - t0, "networks_per_node": dict(per_node), "probe_node": probe_node}


def measure(stack: Stack, drivers: dict[str, HostDriver], n: int, timeout: float = 600.0) -> dict[str, Any]:
    """``{"one": phase, "two": phase, "ratio": two/one}``; stops the bench's own agent first."""
    stack.stop_agents()  # it signs its node off: no network is scheduled to it from here on
    nodes = Nodes(stack, drivers)
    # The scheduling runs here, in the bench's process: one server per network, as the agents are told too.
    with override_settings(NETDASH_DHCP_SERVERS_PER_NETWORK=1):
        try:
            out: dict[str, Any] = {"label": LABEL, "n": n}
            out["agent_startup_s"] = {NODES[0]: nodes.start(NODES[0])}
            out["one"] = _phase(nodes, n, 1, timeout)
            out["agent_startup_s"][NODES[1]] = nodes.start(NODES[1])
            out["two"] = _phase(nodes, n, 2, timeout)
            out["ratio"] = out["two"]["wall"] / out["one"]["wall"]
            return out
        finally:
            nodes.stop()
            Node.objects.filter(name__in=NODES).delete()  # their rows: nothing of theirs is left to point at them


def table(row: dict[str, Any]) -> str:
    n = row["n"]
    lines = [f"{'realise ' + str(n) + ' networks (' + LABEL + ')':<52} {'wall':>8}  networks per node"]
    for key, label in (("one", "one agent"), ("two", "two agents (two nodes)")):
        x = row[key]
        lines.append(f"{label:<52} {x['wall']:>6.2f} s  {x['networks_per_node']}")
    lines.append(f"{'two / one':<52} {row['ratio']:>7.2f}x")
    return "\n".join(lines)

