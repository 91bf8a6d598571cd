"""``manage.py netns_status``: the database next to the host, per network and instance."""

from django.core.management.base import BaseCommand

from tenants.host import HostDriver, InstanceFound, NetworkFound
from tenants.hostspecs import driver, instance_spec
from tenants.models import Instance, Network


class Command(BaseCommand):
    help = ("Table of DB vs host per network/instance: namespace present, dnsmasq and the DHCP clients (udhcpc, "
            "dhcpcd) alive, lease held.")

    def handle(self, *args, **options) -> None:
        d = driver()
        n = d.names
        state = d.scan_host()
        rows = [("TENANT", "OBJECT", "DB STATUS", "NAMESPACE", "NS", "PROCESS", "LEASE")]
        for network in Network.objects.select_related("tenant").prefetch_related("subnets", "instances"):
            cidrs = ",".join(s.cidr for s in network.subnets.all())
            net = state.networks.get(network.kernel_id) or NetworkFound()
            if any(s.enable_dhcp for s in network.subnets.all()):
                host = (n.dhcp_ns(network.kernel_id), _yes(net.seg_ns and net.dhcp_ns),
                        "dnsmasq " + _pid(net.dnsmasq_pid), f"{len(d.network_leases(network.kernel_id))} in file")
            else:  # an external network without DHCP: only its segment (no qdhcp namespace, no dnsmasq)
                host = (n.seg_ns(network.kernel_id), _yes(net.seg_ns), "none (no DHCP)", "-")
            rows.append((network.tenant.slug, f"network {network.name} {cidrs}", network.status, *host))
            for instance in network.instances.select_related("network", "subnet", "ipv6_subnet"):
                inst = state.instances.get(instance.kernel_id) or InstanceFound()
                wants = " ".join(a for a in (instance.ip_address, instance.ipv6_address) if a)
                rows.append(("", f"  instance {instance.hostname} (wants {wants})", instance.status,
                             n.inst_ns(instance.kernel_id), _yes(inst.ns), *_clients(d, instance, inst)))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _clients(d: HostDriver, instance: Instance, found: InstanceFound) -> tuple[str, str]:
    """PROCESS and LEASE of an instance: each DHCP client it needs (udhcpc for IPv4, dhcpcd for DHCPv6) with
    what that client holds; a SLAAC-only instance needs none."""
    spec = instance_spec(instance)
    processes, held = [], []
    if spec.dhcpv4:
        processes.append("udhcpc " + _pid(found.udhcpc_pid))
        lease = d.instance_lease(instance.kernel_id)
        held.append(str(lease.ip) if lease else "-")
    if spec.dhcpv6:
        processes.append("dhcpcd " + _pid(found.dhcpcd_pid))
        lease6 = d.instance_lease6(instance.kernel_id)
        held.append((" ".join(str(a) for a in lease6.addresses) or "stateless") if lease6 else "-")
    return ", ".join(processes) or "none (SLAAC)", " ".join(held) or "-"


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _pid(pid: int | None) -> str:
    return str(pid) if pid else "dead"
