"""HA DHCP on the real kernel: one network, a dnsmasq on each of nodes 1 and 2, its instance on node 3 (issue 13).

The instance leases across the VXLAN; either server answers its name (addn-hosts); the server that leased it is
SIGKILLed and the client, renewing, is ACKed by the survivor on the same address without ever losing it — the
survivor is non-authoritative and its lease file was pre-seeded from the reservations (measured: without the
seed it ignores the rebind and the client deconfigures). Same fixture and root-namespace checks as
``test_overlay.py``.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from host_helpers import ns_exec, wait_for
from test_overlay import CIDR, NODES, overlay  # noqa: F401 - the fixture, with its cleanup and root checks

from tenants.host import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec
from tenants.host.dhcp_client import read_lease

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)

SERVER = {1: "10.77.0.2", 2: "10.77.0.3"}
MAC, IP, HOST = "02:00:00:0c:00:01", "10.77.0.11", "hvm"


def server_spec(i: int) -> NetworkSpec:
    """Node ``i``'s server: its own address, the other announced too, HA mode."""
    subnet = SubnetSpec(cidr=CIDR, gateway="10.77.0.1", dhcp_address=SERVER[i],
                        peer_dhcp_addresses=tuple(a for j, a in SERVER.items() if j != i), lease_seconds=3600)
    return NetworkSpec("c1", (subnet,), (ReservationSpec(MAC, HOST, IP),), ha=True)


def test_the_client_renews_from_the_surviving_server_without_losing_its_address(overlay):  # noqa: F811
    o = overlay
    o.fab.ensure_fabric()
    for i in NODES:
        o.node[i].ensure_underlay(o.underlay(i))
        o.node[i].ensure_network(server_spec(i) if i in SERVER else NetworkSpec("c1", ()))
        o.node[i].ensure_tunnel(o.tunnel("c1", 201, i, [j for j in NODES if j != i]))
    for i in SERVER:
        argv = open(f"/proc/{o.node[i].dnsmasq_pid('c1')}/cmdline").read().split("\0")
        assert "--dhcp-authoritative" not in argv and f"--addn-hosts={o.node[i].names.addn_hosts('c1')}" in argv
        assert f"0 {MAC} {IP} {HOST} *" in o.node[i].names.leases("c1").read_text()  # seeded before start

    d3 = o.node[3]
    d3.ensure_instance(InstanceSpec("e3", "c1", MAC, HOST))
    lease = d3.wait_instance_lease("e3", timeout=30)
    assert lease is not None and str(lease.ip) == IP
    assert sorted(str(x) for x in lease.dns_servers) == sorted(SERVER.values())
    first = next(i for i, a in SERVER.items() if str(lease.server_id) == a)
    survivor = next(i for i in SERVER if i != first)
    inst = d3.names.inst_ns("e3")
    for address in SERVER.values():  # both answer the name, also the one that gave no lease (busybox nslookup
        # gives up after one lost datagram: the first query may go out before the path across the VXLAN is learnt)
        assert wait_for(lambda a=address: IP in ns_exec(inst, "busybox", "nslookup", HOST, a, check=False).stdout,
                        timeout=30, step=0.5), f"{address} does not answer {HOST}"

    # Power cut of the leasing server; the client asks again (SIGUSR1) until the survivor's ACK reaches it.
    os.kill(o.node[first].dnsmasq_pid("c1"), signal.SIGKILL)
    udhcpc = int(d3.names.udhcpc_pid("e3").read_text())
    lost: list[float] = []

    def renewed_by_survivor() -> bool:
        held = read_lease(d3.names.inst_lease("e3"))
        if held is None:
            lost.append(time.monotonic())
            return False
        if str(held.server_id) == SERVER[survivor]:
            return str(held.ip) == IP
        os.kill(udhcpc, signal.SIGUSR1)
        return False

    assert wait_for(renewed_by_survivor, timeout=60, step=0.5), "no ACK from the surviving server"
    assert lost == [], "the client deconfigured during the failover"
    assert IP in ns_exec(inst, "ip", "-br", "addr").stdout
    assert "DHCPACK" in o.node[survivor].names.dnsmasq_log("c1").read_text()
