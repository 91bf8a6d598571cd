"""IPv6 instance clients end to end: rows → RQ jobs (real Redis) → namespaces, dnsmasq, dhcpcd / udhcpc → lease rows.

Per mode, the instance ends with exactly the address the database says, and the right clients run: dhcpcd only for
DHCPv6 subnets, udhcpc only with an IPv4 subnet.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from django.core.management import call_command

from tenants import services
from tenants.choices import LeaseState, ObjectStatus
from tenants.hostspecs import driver
from tenants.models import Instance, Lease, Tenant
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.usefixtures("fast_ipv6")]


def global_v6(instance: Instance) -> set[str]:
    d = driver()
    out = subprocess.run(["ip", "netns", "exec", d.names.inst_ns(instance.kernel_id), "ip", "-6", "-o", "addr",
                          "show", "scope", "global", "-tentative"], capture_output=True, text=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def v6_network(tenant: Tenant, mode: str, *, dual: bool):
    network = services.network_create(tenant=tenant, name=f"n-{mode}", subnet={
        "cidr": "192.168.7.0/24" if dual else "2001:db8:71::/64",
        **({} if dual else {"ipv6_ra_mode": mode, "ipv6_address_mode": mode})})
    if dual:
        services.subnet_create(network=network, cidr="2001:db8:71::/64", ipv6_ra_mode=mode, ipv6_address_mode=mode)
    return network


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless", "dhcpv6-stateful"])
@pytest.mark.parametrize("dual", [False, True], ids=["v6-only", "dual-stack"])
def test_each_mode_ends_with_the_database_address_and_clients(host_clean, agent_queue, mode, dual, capsys):
    tenant = Tenant.objects.create(name="T6", slug="t6")
    network = v6_network(tenant, mode, dual=dual)
    instance = services.instance_create(network=network, hostname="vm6")
    want6 = instance.ipv6_address if dual else instance.ip_address
    assert settle(lambda: Instance.objects.get(pk=instance.pk).status == ObjectStatus.ACTIVE
                  and global_v6(instance) == {want6}), (global_v6(instance), want6)
    d, kid = driver(), instance.kernel_id
    assert (d.dhcpcd_pid(kid) is not None) == (mode != "slaac")
    assert (d.udhcpc_pid(kid) is not None) == dual
    v6_rows = lambda: set(Lease.objects.filter(instance=instance, state=LeaseState.ACTIVE,  # noqa: E731
                                               ip_address__contains=":").values_list("mac_address", "ip_address"))
    if mode == "dhcpv6-stateful":
        assert settle(lambda: v6_rows() == {(instance.mac_address, want6)}), v6_rows()
    else:
        assert v6_rows() == set()  # SLAAC addresses are not leased
    if dual:
        # Read until it is there: ``active`` comes from dnsmasq's lease file, written before its ACK reaches
        # udhcpc and the client's script records the lease (a read in that window found none under load).
        held = lambda: d.instance_lease(kid)  # noqa: E731
        assert settle(lambda: held() is not None and str(held().ip) == instance.ip_address), held()
    # What an operator reads: the row of ``manage.py netns_status`` names each client the instance runs, then what
    # each holds (udhcpc's IPv4 lease, dhcpcd's DHCPv6 address, or "stateless": options only, which may follow the
    # SLAAC address).
    holds = ([instance.ip_address] if dual else []) + (
        {"slaac": [], "dhcpv6-stateless": ["stateless"], "dhcpv6-stateful": [want6]}[mode])

    def tail() -> str:
        """Read at each try: right after its first lease udhcpc's pid file names its exiting first process until
        the daemon rewrites it, so a pid read in that window is None (seen once on PostgreSQL)."""
        processes = ([f"udhcpc {d.udhcpc_pid(kid)}"] if dual else []) + (
            [f"dhcpcd {d.dhcpcd_pid(kid)}"] if mode != "slaac" else [])
        return re.escape(", ".join(processes) or "none (SLAAC)") + r"\s+" + re.escape(" ".join(holds) or "-") + "$"

    assert settle(lambda: re.search(tail(), netns_status_row(instance, capsys))), (
        tail(), netns_status_row(instance, capsys))


def netns_status_row(instance: Instance, capsys) -> str:
    """The instance's row of ``manage.py netns_status``."""
    call_command("netns_status")
    [row] = [line for line in capsys.readouterr().out.splitlines() if f"instance {instance.hostname} " in line]
    return row
