"""``manage.py netns_status``: the database next to the host, per network and instance."""

from django.core.management.base import BaseCommand

from tenants.host import InstanceFound, NetworkFound
from tenants.hostspecs import driver
from tenants.models import Network


class Command(BaseCommand):
    help = "Table of DB vs host per network/instance: namespace present, dnsmasq/udhcpc alive, lease held."

    def handle(self, *args, **options) -> None:
        d = driver()
        n = d.names
        state = d.scan_host()
        rows = [("TENANT", "OBJECT", "DB STATUS", "NAMESPACE", "NS", "PROCESS", "LEASE")]
        for network in Network.objects.select_related("tenant").prefetch_related("subnets", "instances"):
            cidrs = ",".join(s.cidr for s in network.subnets.all())
            net = state.networks.get(network.kernel_id) or NetworkFound()
            rows.append((network.tenant.slug, f"network {network.name} {cidrs}", network.status,
                         n.dhcp_ns(network.kernel_id), _yes(net.seg_ns and net.dhcp_ns),
                         "dnsmasq " + _pid(net.dnsmasq_pid), f"{len(d.network_leases(network.kernel_id))} in file"))
            for instance in network.instances.all():
                inst = state.instances.get(instance.kernel_id) or InstanceFound()
                lease = d.instance_lease(instance.kernel_id)
                rows.append(("", f"  instance {instance.hostname} (wants {instance.ip_address})", instance.status,
                             n.inst_ns(instance.kernel_id), _yes(inst.ns), "udhcpc " + _pid(inst.udhcpc_pid),
                             str(lease.ip) if lease else "-"))
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _pid(pid: int | None) -> str:
    return str(pid) if pid else "dead"
