"""Host driver: the only code that touches the kernel or spawns dnsmasq / DHCP clients.

Pure Python, no Django: the jobs layer builds specs from database rows and calls
:class:`HostDriver`. Each tenant network becomes a segment namespace with a bridge plus a
DHCP namespace running its own dnsmasq (like Neutron's DHCP agent); each instance is a
namespace with a veth on that bridge running busybox udhcpc.
"""

from . import netns
from .config import HostConfig
from .dhcp_client import InstanceLease
from .driver import HostDriver, HostState, InstanceHost, InstanceState, NetworkHost, NetworkState
from .errors import HostError, HostInputError
from .inspect import NamespaceInfo, inspect_namespace
from .leases import Lease, LeaseEvent, LeaseWatcher, parse_leases, read_leases
from .naming import Names
from .ops import Op, transcript
from .specs import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec

__all__ = [
    "HostConfig", "HostDriver", "HostError", "HostInputError", "HostState", "InstanceHost", "InstanceLease",
    "InstanceSpec", "InstanceState", "Lease", "LeaseEvent", "LeaseWatcher", "NamespaceInfo", "Names",
    "NetworkHost", "NetworkSpec", "NetworkState", "Op", "ReservationSpec", "SubnetSpec", "inspect_namespace",
    "netns", "parse_leases", "read_leases", "transcript",
]
