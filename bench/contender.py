"""What the floor and the shell baseline share: specs, names and the time-measuring helpers around a prefix.

Both build the same topology as netdash (segment namespace with a bridge, DHCP namespace with dnsmasq, one
namespace per instance running busybox udhcpc) with the SAME dnsmasq and udhcpc argv, taken from the host
driver's command builders; only the way the steps are executed differs.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from tenants.host import HostDriver, netns
from tenants.host.process import kill, wait_gone
from tenants.host.specs import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec

CIDR = "10.0.0.0/24"


def net_id(i: int) -> str:
    return f"{i + 1:08x}"


def inst_id(i: int) -> str:
    return f"a{i + 1:07x}"


def mac(i: int) -> str:
    return "02:be:" + ":".join(f"{b:02x}" for b in (i + 1).to_bytes(4, "big"))


def inst_ip(i: int) -> str:
    return f"10.0.{(i + 3) // 256}.{(i + 3) % 256}"


@dataclass(frozen=True)
class Inst:
    """An instance of a contender: its spec and the address its reservation gives it."""

    spec: InstanceSpec
    ip: str


def network_spec(nid: str, instances: list[Inst] = ()) -> NetworkSpec:
    cidr = "10.0.0.0/22" if len(instances) > 250 else CIDR
    subnet = SubnetSpec(cidr=cidr, gateway="10.0.0.1", dhcp_address="10.0.0.2", lease_seconds=3600, tag="s1")
    res = tuple(ReservationSpec(mac=x.spec.mac, hostname=x.spec.hostname, ip=x.ip) for x in instances)
    return NetworkSpec(kernel_id=nid, subnets=(subnet,), reservations=res)


def instances_for(nid: str, first: int, count: int) -> list[Inst]:
    return [Inst(InstanceSpec(kernel_id=inst_id(first + k), network_kernel_id=nid, mac=mac(first + k),
                              hostname=f"h{first + k}"), inst_ip(k)) for k in range(count)]


def kill_everything(d: HostDriver, *, keep_state: bool) -> None:
    """A simulated reboot (keep_state) or a brute teardown: SIGKILL our processes, delete our namespaces.

    Goes around the driver's remove_* on purpose ("behind the app's back"): only /proc, pid files and umount.
    With ``keep_state`` the state directories survive (as /var does across a reboot), but each instance's lease
    file is removed, since an instance that rebooted holds no lease until it asks again.
    """
    st = d.scan_host()
    pids = [nh.dnsmasq_pid for nh in st.networks.values()] + [ih.udhcpc_pid for ih in st.instances.values()]
    pids += [p for ps in st.stray_pids.values() for p in ps]
    for pid in pids:
        if pid is not None:
            kill(pid, signal.SIGKILL)
    for pid in pids:
        if pid is not None:
            wait_gone(pid)
    for name in netns.list_names():
        if d.names.parse_ns(name) is not None:
            netns.remove(name)
    if keep_state:
        for iid in st.instances:
            try:
                os.unlink(d.names.inst_lease(iid))
            except FileNotFoundError:
                pass
