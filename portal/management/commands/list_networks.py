"""``manage.py list_networks [--tenant slug]``: a table of networks with their status and counts."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import selectors
from tenants.models import Network, Tenant

COLUMNS = ("ID", "TENANT", "NAME", "STATUS", "SUBNETS", "INSTANCES", "LEASES", "REASON")


class Command(BaseCommand):
    help = "List networks (all tenants, or one) with status, subnets, instance and active-lease counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="Only this tenant's networks (slug).")

    def handle(self, *args, tenant: str | None, **options) -> None:
        qs = Network.objects.select_related("tenant")
        if tenant:
            tenant_obj = Tenant.objects.filter(slug=tenant).first()
            if tenant_obj is None:
                raise CommandError(f"No tenant with slug {tenant!r}.")
            qs = qs.filter(tenant=tenant_obj)
        rows = [
            (str(n.pk), n.tenant.slug, n.name, n.status, ",".join(s.cidr for s in n.subnets.all()) or "-",
             str(n.instance_count), str(n.lease_count), n.status_reason[:60])
            for n in selectors.networks_with_counts(qs).order_by("tenant__slug", "name")
        ]
        if not rows:
            self.stdout.write("no networks")
            return
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        for row in (COLUMNS, *rows):
            self.stdout.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
