"""Helpers shared by the fault drills (imported as ``faults_helpers``; ``tests/faults`` is not a package).

Everything here observes the real host (``/proc``, ``/run/netns``, the state directory) or the database;
nothing fakes either side.
"""

from __future__ import annotations

import shutil
import signal
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from django.db import connection

from tenants import services
from tenants.choices import LeaseState, ObjectStatus
from tenants.host import netns, process
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, Network, Tenant


def agent_database_url() -> str:
    """``DATABASE_URL`` of the test database this process uses (SQLite file or PostgreSQL), for an agent
    subprocess: the PostgreSQL stage of ``make test`` runs the drills where row locks really contend."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
        return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    raise NotImplementedError(f"agent subprocesses on {connection.vendor} databases")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.05) -> float | None:
    """Poll ``predicate``; return the seconds it took to hold (at least 0.001: an immediate success must still be
    truthy for ``assert wait_for(...)``), or None on timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return max(round(time.monotonic() - start, 3), 0.001)
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)


# --- host observation ---------------------------------------------------------------------------------

def our_processes() -> dict[str, list[int]]:
    """dnsmasq/udhcpc processes started from this run's state dir, found via /proc (even in deleted netns)."""
    state = str(driver().config.state_dir)
    found: dict[str, list[int]] = {"dnsmasq": [], "udhcpc": []}
    for p in process.processes():
        if p.program in found and any(state in a for a in p.argv):
            found[p.program].append(p.pid)
    return found


def frozen(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (SIGSTOP has landed)."""
    try:
        return all(Path(task, "stat").read_text().rpartition(")")[2].split()[0] == "T"
                   for task in Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False


def our_namespaces() -> list[str]:
    prefix = driver().config.prefix
    return [n for n in netns.list_names() if n.startswith(prefix)]


def host_counts() -> dict[str, int]:
    """What this run has on the host: namespaces, processes, state dirs (for leak checks and reports)."""
    d = driver()
    procs = our_processes()
    state_dir, resolv_root = d.config.state_dir, Path("/etc/netns")
    state = list(state_dir.glob(f"{d.config.prefix}*")) if state_dir.is_dir() else []
    resolv = list(resolv_root.glob(f"{d.config.prefix}*")) if resolv_root.is_dir() else []
    return {"namespaces": len(our_namespaces()), "dnsmasq": len(procs["dnsmasq"]), "udhcpc": len(procs["udhcpc"]),
            "state_dirs": len(state), "resolv_dirs": len(resolv)}


def expected_counts(networks: Iterable[Network]) -> dict[str, int]:
    """What ``host_counts`` should say for these (DHCP-enabled) networks and their instances."""
    networks = list(networks)
    instances = Instance.objects.filter(network__in=networks).count()
    return {"namespaces": 2 * len(networks) + instances, "dnsmasq": len(networks), "udhcpc": instances,
            "state_dirs": len(networks) + instances, "resolv_dirs": instances}


def resolver_gaps(networks: Iterable[Network]) -> list[dict]:
    """Instances without their ``/etc/netns`` resolver, with what explains it (lease file, udhcpc's log)."""
    n = driver().names
    out = []
    for inst in Instance.objects.filter(network__in=list(networks)).select_related("network"):
        if n.resolv_dir(inst.kernel_id).exists():
            continue
        nid = inst.network.kernel_id
        lease, log, hosts, dnsmasq_log = (
            p.read_text() if p.exists() else None
            for p in (n.inst_lease(inst.kernel_id), n.udhcpc_log(inst.kernel_id), n.hosts(nid), n.dnsmasq_log(nid)))
        mac = inst.mac_address.lower()
        about_mac = [line for line in (dnsmasq_log or "").splitlines() if mac in line.lower()]
        out.append({"instance": inst.kernel_id, "mac": mac, "status": inst.status, "lease_file": lease,
                    "udhcpc_log": log and log[-300:], "reserved": hosts is not None and mac in hosts.lower(),
                    "dnsmasq_log_for_mac": about_mac[-8:], "dnsmasq_log_tail": (dnsmasq_log or "")[-800:]})
    return out


def simulate_reboot(*, state_dir_kept: bool = True) -> dict[str, int]:
    """What a host reboot does to us: every process and namespace gone; the state directory (disk) is kept
    unless ``state_dir_kept`` is false (a fresh boot of a machine whose state dir was on tmpfs, or was wiped)."""
    procs = [pid for pids in our_processes().values() for pid in pids]
    killed = sum(1 for pid in procs if process.kill(pid, signal.SIGKILL))
    for pid in procs:
        wait_for(lambda pid=pid: process.cmdline(pid) is None, 2.0, 0.005)
    names = our_namespaces()
    for name in names:
        netns.remove(name)
    state_dir = driver().config.state_dir
    removed = 0
    if not state_dir_kept and state_dir.is_dir():
        # Only our run's state dir, and only entries carrying our prefix (the dir is private to this run anyway).
        for entry in state_dir.glob(f"{driver().config.prefix}*"):
            shutil.rmtree(entry)
            removed += 1
    return {"killed_processes": killed, "removed_namespaces": len(names), "removed_state_dirs": removed}


# --- building and checking ----------------------------------------------------------------------------

def build(slug: str, cidr: str, instances: int, name: str = "net") -> tuple[Network, list[Instance]]:
    """A tenant with one DHCP network and ``instances`` instances, created through the services."""
    tenant = Tenant.objects.create(name=f"Tenant {slug}", slug=slug)
    network = services.network_create(tenant=tenant, name=name, subnet={"cidr": cidr})
    made = [services.instance_create(network=network, hostname=f"{slug}-vm{i}") for i in range(instances)]
    return network, made


def instance_leased(instance: Instance) -> bool:
    """The instance is active in the DB with an active lease on its IPAM address, and holds it on the host."""
    row = Instance.objects.filter(pk=instance.pk).first()
    if row is None or row.status != ObjectStatus.ACTIVE:
        return False
    if not Lease.objects.filter(instance=row, state=LeaseState.ACTIVE, ip_address=row.ip_address).exists():
        return False
    held = driver().instance_lease(row.kernel_id)
    return held is not None and str(held.ip) == row.ip_address


def converged(networks: Iterable[Network]) -> bool:
    """Every network active with a live dnsmasq, every instance leased on its address."""
    d = driver()
    for network in networks:
        row = Network.objects.filter(pk=network.pk).first()
        if row is None or row.status != ObjectStatus.ACTIVE or d.dnsmasq_pid(row.kernel_id) is None:
            return False
        if not all(instance_leased(i) and d.udhcpc_pid(i.kernel_id) for i in row.instances.all()):
            return False
    return True


def lease_mismatches(networks: Iterable[Network]) -> list[str]:
    """Differences between active Lease rows and each network's dnsmasq lease file (empty = they match)."""
    d = driver()
    out = []
    for network in networks:
        in_file = {(str(e.ip), e.mac) for e in d.network_leases(network.kernel_id)}
        in_db = set(Lease.objects.filter(subnet__network=network, state=LeaseState.ACTIVE)
                    .values_list("ip_address", "mac_address"))
        out += [f"{network.name}: file only {x}" for x in sorted(in_file - in_db)]
        out += [f"{network.name}: db only {x}" for x in sorted(in_db - in_file)]
    return out


def renew(instance: Instance, timeout: float = 5.0) -> str | None:
    """Make the instance's udhcpc renew now (SIGUSR1); return the IP it then holds, None if no answer."""
    d = driver()
    path = d.names.inst_lease(instance.kernel_id)

    def mtime() -> int:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return 0

    before = mtime()
    d.renew_instance(instance.kernel_id)
    if wait_for(lambda: mtime() != before, timeout, 0.01) is None:
        return None
    held = d.instance_lease(instance.kernel_id)
    return str(held.ip) if held else None
