"""Bench rows for routers (issue 14): router realise time, and floating IP associate → reachable from upstream.

netdash: through the services (what the API calls), realised by the running agents, as ``product.py``. By hand:
the shell contender's host (prefix ``bs-``) with the same networks, where bash runs the very ``ip``/``sysctl``/
``nft`` commands the router driver prints for a person (``transcript_router``, from the same ops it applies), so
the two columns do the same steps in the same run. Both sides wait for the same things: the router realised
(netdash: its row ``active``; by hand: the script done), and an echo service in the instance answering a client in
the upstream namespace at the floating IP (a prober that is already polling when the clock starts).
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tenants import routers, services
from tenants.choices import LeaseState, ObjectStatus
from tenants.host import UPSTREAM_ECHO_PORT, HostDriver, netns
from tenants.host.kinds.upstream import SCRIPT
from tenants.host.process import kill
from tenants.host.specs import (
    FloatingIPSpec,
    InstanceSpec,
    NetworkSpec,
    RouterGatewaySpec,
    RouterPortSpec,
    RouterSpec,
    SubnetSpec,
    UpstreamSpec,
)
from tenants.hostspecs import driver
from tenants.models import Lease, Network, Router, Tenant

from . import supervisor
from .contender import Inst, inst_id, mac, network_spec
from .stats import summary, wait_for

UPSTREAM, EXTERNAL_CIDR = "203.0.113.1", "203.0.113.0/24"
BACK_CIDR = "10.0.1.0/24"
PROBE = """
import socket, sys, time
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2) as s:
            if s.recv(64):
                sys.exit(0)
    except OSError:
        time.sleep(0.002)
sys.exit(1)
"""


def _echo(ns: str, pid_file: Path) -> None:
    """The upstream's echo service in an instance namespace: what the floating IP must reach."""
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(SCRIPT), str(UPSTREAM_ECHO_PORT), str(pid_file)],
                   check=True, capture_output=True, text=True, timeout=30)
    supervisor.record_pid(pid_file.parent, int(pid_file.read_text().strip()))


def _stop(pid_file: Path) -> None:
    try:
        kill(int(pid_file.read_text().strip()))
    except (OSError, ValueError):
        pass


def _reached(upstream_ns: str, address: str, act, timeout: float) -> float:
    """Seconds from ``act()`` until a client in the upstream, already polling, gets an answer at ``address``."""
    probe = subprocess.Popen(["ip", "netns", "exec", upstream_ns, sys.executable, "-c", PROBE, address,
                              str(UPSTREAM_ECHO_PORT), str(timeout)], stdout=subprocess.PIPE, text=True)
    try:
        assert probe.stdout is not None and probe.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        act()
        if probe.wait(timeout=timeout + 10) != 0:
            raise TimeoutError(f"{address} not reachable from {upstream_ns} within {timeout:.0f} s")
        return time.perf_counter() - t0
    finally:
        if probe.poll() is None:
            probe.kill()
            probe.wait()


class RouterRows:
    """Both columns of the two router rows, ``n`` samples each."""

    def __init__(self, run_dir: Path, hand: HostDriver) -> None:
        self.run_dir = run_dir
        self.hand = hand

    # -- netdash ---------------------------------------------------------------------------------------------
    def netdash(self, n: int, timeout: float = 120.0) -> dict[str, Any]:
        operators = services.tenant_create(name="bench operators", slug="bench-ops")
        external = routers.external_network_create(
            tenant=operators, name="bench-public", simulated_upstream=True,
            subnet={"cidr": EXTERNAL_CIDR, "gateway": UPSTREAM, "enable_dhcp": False})
        upstream_ns = driver().names.upstream_ns(external.kernel_id)
        wait_for(lambda: Network.objects.get(pk=external.pk).status == ObjectStatus.ACTIVE
                 and netns.exists(upstream_ns), timeout, 0.02, "external network active")
        realise, reach = [], []
        for i in range(n):
            r, f = self._netdash_sample(i, external, upstream_ns, timeout)
            realise.append(r)
            reach.append(f)
        return {"realise": summary(realise), "fip_reachable": summary(reach)}

    def _netdash_sample(self, i: int, external: Network, upstream_ns: str, timeout: float) -> tuple[float, float]:
        tenant = services.tenant_create(name=f"bench router {i}", slug=f"bench-router-{i}")
        front = services.network_create(tenant=tenant, name="front", subnet={"cidr": "10.0.0.0/24"})
        back = services.network_create(tenant=tenant, name="back", subnet={"cidr": BACK_CIDR})
        vm = services.instance_create(network=front, hostname="vm")
        wait_for(lambda: Lease.objects.filter(instance=vm, state=LeaseState.ACTIVE).exists()
                 and Network.objects.filter(pk=back.pk, status=ObjectStatus.ACTIVE).exists(),
                 timeout, 0.02, "networks up, instance leased")
        t0 = time.perf_counter()
        router = routers.router_create(tenant=tenant, name="r", external_network=external)
        for network in (front, back):
            routers.router_interface_add(router=router, subnet=network.subnets.get())

        def active() -> bool:
            row = Router.objects.get(pk=router.pk)
            if row.status == ObjectStatus.ERROR:
                raise RuntimeError(f"router failed: {row.status_reason}")
            return row.status == ObjectStatus.ACTIVE

        realised = wait_for(active, timeout, 0.005, "router active") - t0
        pid_file = self.run_dir / f"nd-echo-{i}.pid"
        _echo(driver().names.inst_ns(vm.kernel_id), pid_file)
        fip = routers.floating_ip_allocate(tenant=tenant, external_network=external)
        try:
            reached = _reached(upstream_ns, fip.address,
                               lambda: routers.floating_ip_associate(floating_ip=fip, instance=vm), timeout)
        finally:
            _stop(pid_file)
        services.tenant_delete(tenant=tenant)
        wait_for(lambda: not Tenant.objects.filter(pk=tenant.pk).exists(), timeout, 0.05, "tenant gone")
        return realised, reached

    # -- the same steps by hand ---------------------------------------------------------------------------------
    def _hand_networks(self) -> tuple[str, str, str, Inst]:
        d = self.hand
        vm = Inst(InstanceSpec(kernel_id=inst_id(900), network_kernel_id="0000e001", mac=mac(900), hostname="vm"),
                  "10.0.0.3")
        d.ensure_network(network_spec("0000e001", [vm]))
        d.ensure_network(NetworkSpec("0000e002", (SubnetSpec(BACK_CIDR, gateway="10.0.1.1", dhcp_address="10.0.1.2",
                                                             enable_dhcp=False),)))
        d.ensure_network(NetworkSpec("0000e003", (SubnetSpec(EXTERNAL_CIDR, gateway=UPSTREAM,
                                                             dhcp_address="203.0.113.2", enable_dhcp=False),)))
        d.ensure_upstream(UpstreamSpec("0000e003", f"{UPSTREAM}/24"))
        d.ensure_instance(vm.spec)
        return "0000e001", "0000e002", "0000e003", vm

    def _bash(self, lines: list[str], name: str) -> float:
        script = self.run_dir / name
        script.write_text("\n".join(["set -e", *lines, ""]))
        t0 = time.perf_counter()
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed: {done.stderr.strip()}")
        return time.perf_counter() - t0

    def by_hand(self, n: int, timeout: float = 120.0) -> dict[str, Any]:
        d = self.hand
        front, back, ext, vm = self._hand_networks()
        upstream_ns = d.names.upstream_ns(ext)
        pid_file = self.run_dir / "bs-echo.pid"
        _echo(d.names.inst_ns(vm.spec.kernel_id), pid_file)
        realise, reach = [], []
        try:
            for i in range(n):
                rid = f"0000f1{i:02x}"
                external = ipaddress.ip_address("203.0.113.10") + i
                spec = RouterSpec(rid, (RouterPortSpec(f"0000c{i:02x}a", front, ("10.0.0.1/24",)),
                                        RouterPortSpec(f"0000c{i:02x}b", back, ("10.0.1.1/24",))),
                                  RouterGatewaySpec(ext, f"{external}/24", UPSTREAM))
                fip = str(external + 100)
                with_fip = RouterSpec(rid, spec.ports, spec.gateway, floating_ips=(FloatingIPSpec(fip, vm.ip),))
                realise.append(self._bash(d.transcript_router(spec), f"router-{i}.sh"))
                done = set(d.transcript_router(spec))
                fip_lines = [line for line in d.transcript_router(with_fip) if line not in done]
                reach.append(_reached(upstream_ns, fip, lambda lines=fip_lines, i=i: self._bash(lines, f"fip-{i}.sh"),
                                      timeout))
                d.remove_routers([rid])
        finally:
            _stop(pid_file)
            d.remove_instance(vm.spec.kernel_id)
            d.remove_networks([front, back, ext])
        return {"realise": summary(realise), "fip_reachable": summary(reach)}

