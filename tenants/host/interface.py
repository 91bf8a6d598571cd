"""The seam between the jobs, the agent and teach on one side and the kernel on the other.

:class:`HostDriver` names everything callers may ask of a host; :class:`..driver.LinuxHostDriver` is the one
implementation (namespaces, dnsmasq, udhcpc). The value types below are what its methods return:
``*Realised`` is what an ``ensure_*`` left running, ``*Found`` / :class:`HostScan` is what a scan found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .config import HostConfig
from .dhcp_client import InstanceLease, InstanceLease6, UdhcpcCommand
from .dnsmasq import DnsmasqCommand
from .leases import DnsmasqLease
from .naming import Names
from .ops import Op
from .ra_probe import RouterAdvert
from .specs import InstanceSpec, NetworkSpec, RouterSpec, TunnelSpec, UnderlaySpec, UpstreamSpec


@dataclass(frozen=True)
class NetworkRealised:
    """What ``ensure_network`` left running."""

    kernel_id: str
    seg_ns: str
    dhcp_ns: str | None
    dhcp_interface: str | None
    dnsmasq_pid: int | None


@dataclass(frozen=True)
class InstanceRealised:
    """What ``ensure_instance`` left running and the lease the instance holds (None = still trying)."""

    kernel_id: str
    ns: str
    udhcpc_pid: int | None
    lease: InstanceLease | None
    dhcpcd_pid: int | None = None


@dataclass(frozen=True)
class RouterRealised:
    """What ``ensure_router`` left in place: the router's namespace, its devices, and whether its NAT table had
    to be (re)written (False: the live table already matched, counters kept)."""

    kernel_id: str
    ns: str
    ports: tuple[str, ...]
    gateway_port: str | None
    ruleset_changed: bool
    conntrack_cleared: tuple[str, ...]  # floating IPs whose flows were deleted (moved or gone)


@dataclass(frozen=True)
class UpstreamRealised:
    """What ``ensure_upstream`` left running."""

    network_kernel_id: str
    ns: str
    echo_pid: int | None


@dataclass
class NetworkFound:
    """A network as :meth:`HostDriver.scan_host` found it."""

    seg_ns: bool = False
    dhcp_ns: bool = False
    dnsmasq_pid: int | None = None
    state_dir: bool = False


@dataclass
class InstanceFound:
    """An instance as :meth:`HostDriver.scan_host` found it."""

    ns: bool = False
    udhcpc_pid: int | None = None
    dhcpcd_pid: int | None = None
    network: str | None = None
    state_dir: bool = False


@dataclass
class RouterFound:
    """A router as :meth:`HostDriver.scan_host` found it."""

    ns: bool = False


@dataclass
class UpstreamFound:
    """A simulated upstream as :meth:`HostDriver.scan_host` found it (keyed by its external network)."""

    ns: bool = False
    echo_pid: int | None = None
    state_dir: bool = False


@dataclass
class HostScan:
    """Everything with our prefix on the host; input for reconcile."""

    networks: dict[str, NetworkFound] = field(default_factory=dict)
    instances: dict[str, InstanceFound] = field(default_factory=dict)
    routers: dict[str, RouterFound] = field(default_factory=dict)
    upstreams: dict[str, UpstreamFound] = field(default_factory=dict)
    # namespaces of kinds named in naming.py that nothing creates yet (RESERVED_NS_KINDS, none now): orphans
    reserved: set[str] = field(default_factory=set)
    # dnsmasq/udhcpc processes in our namespaces that no pid file accounts for
    stray_pids: dict[str, list[int]] = field(default_factory=dict)


class HostDriver(Protocol):
    """What jobs, the agent and teach may call on a host."""

    config: HostConfig
    names: Names

    # planning (pure): the very operations ensure_* applies, and the commands a person would type for them
    def dnsmasq_command(self, spec: NetworkSpec) -> DnsmasqCommand: ...
    def udhcpc_command(self, spec: InstanceSpec) -> UdhcpcCommand: ...
    def plan_network(self, spec: NetworkSpec) -> list[Op]: ...
    def plan_instance(self, spec: InstanceSpec, *, wait: bool = True) -> list[Op]: ...
    def transcript_network(self, spec: NetworkSpec) -> list[str]: ...
    def transcript_instance(self, spec: InstanceSpec) -> list[str]: ...

    # converge
    def ensure_network(self, spec: NetworkSpec) -> NetworkRealised: ...
    def refresh_network(self, spec: NetworkSpec) -> bool: ...
    def ensure_instance(self, spec: InstanceSpec, *, wait: bool = True) -> InstanceRealised: ...
    def instance_running(self, spec: InstanceSpec) -> bool: ...

    # queries
    def dnsmasq_pid(self, net_id: str) -> int | None: ...
    def udhcpc_pid(self, inst_id: str) -> int | None: ...
    def dhcpcd_pid(self, inst_id: str) -> int | None: ...
    def instance_lease6(self, inst_id: str) -> InstanceLease6 | None: ...
    def instance_router_advert(self, inst_id: str, timeout: float = 3.0) -> RouterAdvert | None: ...
    def network_leases(self, net_id: str) -> list[DnsmasqLease]: ...
    def instance_lease(self, inst_id: str) -> InstanceLease | None: ...
    def renew_instance(self, inst_id: str) -> None: ...
    def wait_instance_lease(self, inst_id: str, pred: Callable[[InstanceLease], bool] | None = None,
                            timeout: float = 5.0) -> InstanceLease | None: ...

    # remove
    def remove_instance(self, inst_id: str, *, release: bool = True) -> None: ...
    def remove_instances(self, inst_ids: Iterable[str], *, release: bool = True) -> None: ...
    def forget_leases(self, net_id: str, leases: Iterable[tuple[str, str]]) -> int: ...
    def remove_network(self, net_id: str) -> None: ...
    def remove_networks(self, net_ids: Iterable[str]) -> None: ...
    def instances_of(self, net_ids: Iterable[str]) -> list[str]: ...

    # routers and the simulated upstream
    def plan_router(self, spec: RouterSpec) -> list[Op]: ...
    def transcript_router(self, spec: RouterSpec) -> list[str]: ...
    def ensure_router(self, spec: RouterSpec) -> RouterRealised: ...
    def remove_routers(self, router_ids: Iterable[str]) -> None: ...
    def router_ruleset(self, router_id: str) -> str: ...
    def router_conntrack(self, router_id: str) -> list[str]: ...
    def ensure_upstream(self, spec: UpstreamSpec) -> UpstreamRealised: ...
    def remove_upstream(self, network_kernel_id: str) -> None: ...

    # overlay (several nodes)
    def plan_overlay(self, underlay: UnderlaySpec, tunnels: Iterable[TunnelSpec] = ()) -> list[Op]: ...
    def fabric(self) -> tuple[str, str]: ...
    def ensure_fabric(self) -> None: ...
    def ensure_underlay(self, spec: UnderlaySpec) -> None: ...
    def ensure_tunnel(self, spec: TunnelSpec) -> None: ...
    def remove_underlay(self, node_id: str) -> None: ...
    def remove_overlay(self) -> None: ...

    # scan and reconcile
    def scan_host(self) -> HostScan: ...
    def remove_orphans(
        self, wanted_networks: Iterable[str], wanted_instances: Iterable[str], *,
        wanted_routers: Iterable[str] | None = None, foreign_networks: Iterable[str] = (),
        foreign_instances: Iterable[str] = (), scan: HostScan | None = None,
    ) -> HostScan: ...
