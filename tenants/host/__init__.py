"""Host driver: the only code that touches the kernel or spawns dnsmasq / DHCP clients.

Pure Python, no Django: the jobs layer builds specs from database rows and calls a
:class:`HostDriver` (the interface; :class:`LinuxHostDriver` implements it). Each tenant network becomes a
segment namespace with a bridge plus a DHCP namespace running its own dnsmasq (like Neutron's DHCP agent);
each instance is a namespace with a veth on that bridge running busybox udhcpc; a router is a namespace with
veths into its networks' bridges and its NAT in one nftables table; an external network can carry a simulated
upstream (TEST-NET only) answering with the address it sees.

Map: :mod:`.interface` (what callers may ask), :mod:`.driver` (composes the kinds), :mod:`.kinds` (one module
per kind of kernel object: plan, remove, scan), :mod:`.ops` (netlink operations with their shell equivalent),
:mod:`.process` (the one daemon supervisor and /proc walk), :mod:`.naming` (every kernel name),
:mod:`.specs` / :mod:`.validate` (what should exist, validated), :mod:`.dnsmasq` / :mod:`.dhcp_client` (the two
daemons' argv and files), :mod:`.leases` (dnsmasq lease files and their watcher), :mod:`.netns`, :mod:`.inspect`.
"""

from . import netns
from .config import HostConfig
from .dhcp_client import InstanceLease, InstanceLease6
from .driver import LinuxHostDriver
from .errors import HostError, HostInputError
from .inspect import NamespaceInfo, inspect_namespace
from .interface import (
    HostDriver,
    HostScan,
    InstanceFound,
    InstanceRealised,
    NetworkFound,
    NetworkRealised,
    RouterFound,
    RouterRealised,
    UpstreamFound,
    UpstreamRealised,
)
from .kinds.upstream import UPSTREAM_ECHO_PORT
from .leases import DnsmasqLease, LeaseFileChange, LeaseWatcher, parse_leases, read_leases
from .naming import Names
from .ops import Op, transcript
from .specs import (
    FloatingIPSpec,
    InstanceSpec,
    NetworkSpec,
    ReservationSpec,
    RouterAdvertSpec,
    RouterGatewaySpec,
    RouterPortSpec,
    RouterSpec,
    SubnetSpec,
    TunnelSpec,
    UnderlaySpec,
    UpstreamSpec,
)
from .validate import MIN_LEASE_SECONDS, IPAddress, IPNetwork

__all__ = [
    "MIN_LEASE_SECONDS", "DnsmasqLease", "HostConfig", "HostDriver", "HostError", "HostInputError", "HostScan",
    "IPAddress", "IPNetwork", "InstanceFound", "InstanceLease", "InstanceLease6", "InstanceRealised", "InstanceSpec",
    "LeaseFileChange", "LeaseWatcher", "LinuxHostDriver", "NamespaceInfo", "Names", "NetworkFound",
    "NetworkRealised", "NetworkSpec", "Op", "ReservationSpec", "SubnetSpec", "inspect_namespace", "netns",
    "parse_leases", "read_leases", "transcript",
    # routers and the simulated upstream
    "UPSTREAM_ECHO_PORT", "FloatingIPSpec", "RouterAdvertSpec", "RouterFound", "RouterGatewaySpec", "RouterPortSpec",
    "RouterRealised", "RouterSpec", "UpstreamFound", "UpstreamRealised", "UpstreamSpec",
    # overlay (several nodes)
    "TunnelSpec", "UnderlaySpec",
]
