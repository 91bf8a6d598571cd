"""Three simulated nodes on one machine, one agent process each, a network spanning them over VXLAN (issue 13).

Each node's agent has its own ``NETDASH_NODE``, kernel-name prefix (a network's segment namespace exists once per
node), state directory and VTEP, and all share this run's fabric (``NETDASH_FABRIC_PREFIX``). Safety (the
issue's hard rule): the root namespace's links, addresses and UDP sockets are the same before and after, and it
never holds a 4789 socket, a VTEP address or a VXLAN device.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from faults_helpers import wait_for
from rq.job import Job

from tenants import services
from tenants.choices import NodeState, ObjectStatus
from tenants.host import HostConfig, LinuxHostDriver, netns
from tenants.host.dhcp_client import read_lease
from tenants.models import DhcpServer, Instance, Network, Node, Tenant
from tenants.queue import agent_queue
from tenants.testing import reset_agent_queue

BASE_DIR = Path(__file__).resolve().parents[2]
NODES = ("n1", "n2", "n3")
VTEP = {node: f"10.250.0.{i}" for i, node in enumerate(NODES, 1)}
DEAD_SECONDS = 6  # the agents' NETDASH_NODE_DEAD_SECONDS in the node-loss drill
FAILOVER_BOUND = 20  # seconds beyond it for the duty to move (other agents' heartbeat + a loaded machine)


def node_prefix(node: str) -> str:
    """``<run prefix without '-'><node number>-``: 6 characters at most, so device names still fit."""
    return f"{settings.NETDASH_PREFIX.rstrip('-')}{node[1:]}-"


def node_driver(node: str) -> LinuxHostDriver:
    """The driver ``node``'s agent uses (hostspecs.host_config under that node's environment)."""
    state_dir = (settings.NETDASH_STATE_DIR / node).resolve()
    return LinuxHostDriver(HostConfig(prefix=node_prefix(node), state_dir=state_dir))


def fabric_driver() -> LinuxHostDriver:
    return LinuxHostDriver(HostConfig(prefix=settings.NETDASH_PREFIX, state_dir=settings.NETDASH_STATE_DIR.resolve()))


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def root_view() -> dict[str, str]:
    return {"link": run("ip", "-br", "link"), "addr": run("ip", "-br", "addr"), "udp": run("ss", "-uan")}


def assert_root_clean() -> None:
    view = root_view()
    assert ":4789" not in view["udp"]
    assert "10.250.0." not in view["addr"] + view["udp"]
    assert "vxlan" not in run("ip", "-d", "link")


def ours() -> list[str]:
    return [n for n in netns.list_names() if n.startswith(tuple(node_prefix(node) for node in NODES))
            or n.startswith(f"{settings.NETDASH_PREFIX}fabric-")]


def wipe(node: str) -> None:
    """Everything of ``node`` on the host: processes, namespaces (its underlay too), state."""
    d = node_driver(node)
    d.remove_orphans(set(), set())
    d.remove_overlay()


def reset_queues() -> None:
    reset_agent_queue()
    for node in NODES:
        queue = agent_queue(node)
        queue.empty()
        queue.connection.delete(queue.finished_job_registry.key, queue.failed_job_registry.key,
                                queue.started_job_registry.key, queue.intermediate_queue_key)


class Cluster:
    """Three nodes' agents (started on demand) under this run's database, Redis and fabric."""

    def __init__(self, start_agent: Callable[..., object]) -> None:
        self.start_agent = start_agent
        self.agents: dict[str, object] = {}

    def env(self, node: str, roles: str) -> dict[str, str]:
        return {"NETDASH_PREFIX": node_prefix(node), "NETDASH_FABRIC_PREFIX": settings.NETDASH_PREFIX,
                "NETDASH_NODE_VTEP": VTEP[node], "NETDASH_NODE_ROLES": roles,
                "NETDASH_NODE_HEARTBEAT_SECONDS": "1", "NETDASH_NODE_DEAD_SECONDS": str(DEAD_SECONDS)}

    def start(self, node: str, roles: str = "dhcp,compute", reconcile_seconds: int = 60):
        self.agents[node] = self.start_agent(reconcile_seconds=reconcile_seconds, node=node,
                                             env=self.env(node, roles))
        return self.agents[node]

    def reconcile(self, node: str) -> str:
        """``manage.py reconcile`` as ``node``'s agent would run it; its report."""
        try:
            out = subprocess.run([sys.executable, "manage.py", "reconcile"], cwd=BASE_DIR,
                                 env=self.agents[node].env, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"reconcile of {node} hung:\n{exc.stdout}\n{exc.stderr}")
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout.strip()

    def stop_all(self) -> None:
        for agent in self.agents.values():
            agent.stop(timeout=5)


@pytest.fixture
def cluster(start_agent) -> Iterator[Cluster]:
    before = root_view()
    assert_root_clean()
    reset_queues()
    made = Cluster(start_agent)
    try:
        yield made
    finally:
        made.stop_all()  # before the wipe: a running agent would rebuild what it finds missing
        for node in NODES:
            wipe(node)
        fabric_driver().remove_overlay()
        reset_queues()
        after = root_view()
        assert ours() == []
        # Nothing added to the root namespace (other engineers' runs share the machine: a link of theirs may
        # come or go meanwhile, so "the same" is "none of ours", line by line).
        for key in ("link", "addr"):
            assert set(after[key].splitlines()) <= set(before[key].splitlines()), key
        assert_root_clean()


def leased(instance: Instance) -> bool:
    row = Instance.objects.filter(pk=instance.pk).first()
    held = node_driver(instance.node).instance_lease(instance.kernel_id)
    return row is not None and row.status == ObjectStatus.ACTIVE and held is not None \
        and str(held.ip) == row.ip_address


def ping(instance: Instance, address: str) -> bool:
    ns = node_driver(instance.node).names.inst_ns(instance.kernel_id)
    return subprocess.run(["ip", "netns", "exec", ns, "busybox", "ping", "-c", "1", "-W", "2", address],
                          capture_output=True).returncode == 0


def neighbour_mac(instance: Instance, address: str) -> str:
    ns = node_driver(instance.node).names.inst_ns(instance.kernel_id)
    return run("ip", "-n", ns, "neigh", "show", address).split("lladdr ")[1].split()[0]


def vxlan_id(node: str, network: Network) -> int:
    d = node_driver(node)
    shown = run("ip", "-d", "-n", d.names.seg_ns(network.kernel_id), "link", "show", d.names.vxlan(network.kernel_id))
    return int(shown.split("vxlan id ")[1].split()[0])


def observed(node: str) -> dict[str, object]:
    """Everything of ``node`` that another node's agent (or its own reconcile) must leave exactly as it is."""
    d = node_driver(node)
    names = [n for n in netns.list_names() if n.startswith(d.names.prefix)]
    scan = d.scan_host()
    return {"ns": {n: netns.inode(n) for n in names},
            "dnsmasq": {k: f.dnsmasq_pid for k, f in scan.networks.items()},
            "udhcpc": {k: f.udhcpc_pid for k, f in scan.instances.items()},
            "state": sorted(p.name for p in d.config.state_dir.iterdir())}


def settled() -> dict[str, dict[str, object]]:
    """Every node's observation once it holds still (a DHCP client rewrites its pid file when it forks after its
    first lease) and every client runs."""
    seen: list[dict[str, dict[str, object]]] = []

    def still() -> bool:
        seen.append({node: observed(node) for node in NODES})
        return (len(seen) > 1 and seen[-1] == seen[-2]
                and all(pid is not None for o in seen[-1].values() for pid in o["udhcpc"].values()))

    assert wait_for(still, 60, interval=1.0), "the nodes' state did not settle"
    return seen[-1]


def reconciles_done(node: str) -> int:
    queue = agent_queue(node)
    jobs = Job.fetch_many(queue.finished_job_registry.get_job_ids(), connection=queue.connection)
    return sum(1 for job in jobs if job is not None and job.func_name == "tenants.jobs.reconcile")


@pytest.mark.timeout(600)
def test_instances_on_two_nodes_lease_from_a_third_across_vxlan_and_two_tenants_on_one_cidr_stay_apart(cluster):
    # n2 is the only dhcp node (one server per network), n1 and n3 host the instances.
    cluster.start("n2", roles="dhcp", reconcile_seconds=1)
    cluster.start("n1", roles="compute")
    cluster.start("n3", roles="compute")
    made = {}
    for slug in ("ta", "tb"):
        tenant = Tenant.objects.create(name=f"Tenant {slug}", slug=slug)
        network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.66.0.0/24"})
        made[slug] = (network, [services.instance_create(network=network, hostname=f"{slug}-vm{i}") for i in (1, 2)])
    for network, instances in made.values():
        assert list(DhcpServer.objects.filter(network=network).values_list("node", flat=True)) == ["n2"]
        assert [i.node for i in instances] == ["n1", "n3"]
    everyone = [i for _, instances in made.values() for i in instances]
    assert wait_for(lambda: all(leased(i) for i in everyone), 120), "not every instance leased"
    assert_root_clean()

    for network, (on1, on3) in made.values():
        dhcp = node_driver("n2")
        for instance in (on1, on3):  # leased from n2's dnsmasq, across the VXLAN
            held = node_driver(instance.node).instance_lease(instance.kernel_id)
            assert str(held.server_id) == network.subnets.get().dhcp_address
            assert any(e.mac == instance.mac_address and e.expiry for e in dhcp.network_leases(network.kernel_id))
        for node in ("n1", "n3"):  # no dnsmasq on the compute nodes, no instance namespace on the DHCP node
            assert not netns.exists(node_driver(node).names.dhcp_ns(network.kernel_id))
        assert not [n for n in netns.list_names() if n.startswith(node_driver("n2").names.prefix + "inst-")]
        assert {vxlan_id(node, network) for node in NODES} == {network.vni}
        flood = run("bridge", "-n", node_driver("n1").names.seg_ns(network.kernel_id), "fdb", "show", "dev",
                    node_driver("n1").names.vxlan(network.kernel_id))
        assert f"dst {VTEP['n2']}" in flood and f"dst {VTEP['n3']}" in flood
        assert wait_for(lambda a=on1, b=on3: ping(a, b.ip_address), 30), f"{on1} cannot ping {on3} across nodes"

    (net_a, (a1, a3)), (net_b, (b1, b3)) = made["ta"], made["tb"]
    assert net_a.vni != net_b.vni
    assert a3.ip_address == b3.ip_address  # the same address in both tenants, and each reaches its own
    assert neighbour_mac(a1, a3.ip_address) == a3.mac_address
    assert wait_for(lambda: ping(b1, b3.ip_address), 30)
    assert neighbour_mac(b1, b3.ip_address) == b3.mac_address != a3.mac_address


@pytest.mark.timeout(600)  # three agents started five times on a loaded 2-core machine
def test_agents_stopped_and_started_in_any_order_leave_each_other_alone_and_reconcile_is_idempotent(cluster):
    cluster.start("n2", roles="dhcp", reconcile_seconds=1)
    cluster.start("n1", roles="compute", reconcile_seconds=1)
    cluster.start("n3", roles="compute", reconcile_seconds=1)
    tenant = Tenant.objects.create(name="Tenant order", slug="order")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.67.0.0/24"})
    instances = [services.instance_create(network=network, hostname=f"vm{i}") for i in (1, 2)]
    assert wait_for(lambda: all(leased(i) for i in instances), 120), "setup did not converge"
    before = settled()

    for node in ("n3", "n1"):  # stop two, start them again in the other order, all the while n2 reconciles
        cluster.agents[node].stop()
    for node in ("n1", "n3"):
        cluster.start(node, roles="compute", reconcile_seconds=1)
    done = {node: reconciles_done(node) for node in NODES}
    assert wait_for(lambda: all(reconciles_done(node) >= done[node] + 2 for node in NODES), 120), \
        "the agents did not reconcile twice more"
    assert {node: observed(node) for node in NODES} == before
    for node in ("n1", "n2"):  # a compute node and the DHCP node (a process each: ~5 s of start-up here)
        for _ in range(2):
            assert cluster.reconcile(node) == "nothing to do: the host matches the database"
    assert {node: observed(node) for node in NODES} == before
    assert not Network.objects.exclude(status=ObjectStatus.ACTIVE).exists()


@pytest.mark.timeout(600)
def test_a_dhcp_node_lost_its_clients_renew_from_the_survivor_the_duty_moves_and_the_node_comes_back(cluster, report):
    # Two servers on n2 and n3 (n1 is not up yet when the network is made); instances on n1, the only compute
    # node; n1 is also a dhcp node, where the lost node's duty can move.
    cluster.start("n2", roles="dhcp")
    cluster.start("n3", roles="dhcp")
    tenant = Tenant.objects.create(name="Tenant loss", slug="loss")
    network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "10.68.0.0/24"})
    assert sorted(DhcpServer.objects.filter(network=network).values_list("node", flat=True)) == ["n2", "n3"]
    cluster.start("n1", roles="dhcp,compute")
    instances = [services.instance_create(network=network, hostname=f"vm{i}") for i in (1, 2)]
    assert [i.node for i in instances] == ["n1", "n1"]
    assert wait_for(lambda: all(leased(i) for i in instances), 120), "setup did not converge"
    servers = {s.node: s for s in DhcpServer.objects.filter(network=network).prefetch_related("addresses")}
    address = {node: (network.subnets.get().dhcp_address if s.rank == 0 else s.addresses.get().address)
               for node, s in servers.items()}
    d1 = node_driver("n1")
    held = {i.kernel_id: d1.instance_lease(i.kernel_id) for i in instances}
    by_server = [next(n for n, a in address.items() if a == str(lease.server_id)) for lease in held.values()]
    lost = max(("n2", "n3"), key=by_server.count)  # the node that gave most of the leases
    survivor = next(n for n in ("n2", "n3") if n != lost)

    # Power cut: the agent is SIGKILLed, its processes and namespaces are gone.
    cluster.agents[lost].kill()
    killed_at = time.monotonic()
    wipe(lost)
    deconfigured: list[str] = []

    def renewed_by_survivor(instance: Instance) -> bool:
        lease = read_lease(d1.names.inst_lease(instance.kernel_id))
        addr = run("ip", "-n", d1.names.inst_ns(instance.kernel_id), "-4", "-br", "addr")
        if lease is None or instance.ip_address not in addr:
            deconfigured.append(instance.hostname)
            return False
        if str(lease.server_id) == address[survivor]:
            return str(lease.ip) == instance.ip_address
        d1.renew_instance(instance.kernel_id)
        return False

    assert wait_for(lambda: all(renewed_by_survivor(i) for i in instances), 60, interval=0.2), \
        "not every instance renewed from the surviving server"
    renewed = time.monotonic() - killed_at
    assert deconfigured == [], f"clients deconfigured during the failover: {deconfigured}"

    def moved() -> bool:
        return sorted(DhcpServer.objects.filter(network=network).values_list("node", flat=True)) == sorted(
            ["n1", survivor])

    assert wait_for(moved, DEAD_SECONDS + FAILOVER_BOUND), "the lost node's duty did not move to n1"
    moved_after = time.monotonic() - killed_at
    assert wait_for(lambda: d1.dnsmasq_pid(network.kernel_id) is not None, 60), "n1 does not run the moved server"

    # The node comes back: it converges, and holds nothing of the network whose duty moved away.
    cluster.start(lost, roles="dhcp")
    gone = node_driver(lost).names
    assert not netns.exists(gone.seg_ns(network.kernel_id)) and not netns.exists(gone.dhcp_ns(network.kernel_id))
    assert cluster.reconcile(lost) == "nothing to do: the host matches the database"
    assert all(leased(i) for i in instances)
    report(injected=f"SIGKILL agent {lost} + wipe", renewed_from_survivor_s=round(renewed, 2),
           duty_moved_s=round(moved_after, 2), dead_seconds=DEAD_SECONDS)



@pytest.mark.timeout(600)
def test_a_network_with_an_instance_on_a_lost_node_is_deleted_and_the_node_cleans_up_when_it_returns(cluster):
    # n2 serves DHCP, n1 holds the instance of `doomed`; `other` has an instance on n3 and must not be touched.
    cluster.start("n2", roles="dhcp", reconcile_seconds=1)
    cluster.start("n1", roles="compute", reconcile_seconds=1)
    tenant = Tenant.objects.create(name="Tenant gone", slug="gone")
    doomed = services.network_create(tenant=tenant, name="doomed", subnet={"cidr": "10.69.0.0/24"})
    vm = services.instance_create(network=doomed, hostname="vm-doomed")
    assert vm.node == "n1"
    assert wait_for(lambda: leased(vm), 120), "setup did not converge"
    d1 = node_driver("n1")
    leftovers = (d1.names.inst_ns(vm.kernel_id), d1.names.seg_ns(doomed.kernel_id))
    assert all(netns.exists(ns) for ns in leftovers)

    # A lasting outage: n1's agent is SIGKILLed; its namespaces and client stay on the host, nobody runs them.
    cluster.agents["n1"].kill()
    assert wait_for(lambda: Node.objects.get(name="n1").state == NodeState.DOWN, DEAD_SECONDS + FAILOVER_BOUND), \
        "n1 was not marked down"
    cluster.start("n3", roles="compute", reconcile_seconds=1)
    other = services.network_create(tenant=tenant, name="other", subnet={"cidr": "10.70.0.0/24"})
    keep = services.instance_create(network=other, hostname="vm-keep")
    assert keep.node == "n3"
    assert wait_for(lambda: leased(keep), 120), "the other network did not converge"

    services.network_delete(network=doomed)
    assert wait_for(lambda: not Network.objects.filter(pk=doomed.pk).exists(), 60), \
        "the network stayed deleting while its instance's node was down"
    assert all(netns.exists(ns) for ns in leftovers)  # nobody else touched n1's host state

    # n1 comes back: its reconcile removes what no row names any more, and nothing of the other nodes.
    kept = observed("n3")
    cluster.start("n1", roles="compute", reconcile_seconds=1)
    assert wait_for(lambda: not any(netns.exists(ns) for ns in leftovers), 60), "n1 kept the deleted network's state"
    assert observed("n3") == kept and leased(keep)
