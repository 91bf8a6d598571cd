"""``manage.py node_drain <node> [--undo]``: before maintenance, move a node's DHCP duties off; after, take work."""

from django.core.management.base import BaseCommand, CommandError

from tenants.failover import node_drain, node_undrain
from tenants.models import Node


class Command(BaseCommand):
    help = "Drain a node (no new work, its DHCP duties move to live nodes) or, with --undo, take new work again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("node", help="the node's name")
        parser.add_argument("--undo", action="store_true", help="undrain: the node takes new work again")

    def handle(self, *args, **options) -> None:
        name = options["node"]
        if not Node.objects.filter(name=name).exists():
            raise CommandError(f"no node named {name!r}; see /api/v1/nodes/ or the admin")
        if options["undo"]:
            node_undrain(name)
            self.stdout.write(f"node {name} takes new work again")
        else:
            self.stdout.write(f"node {name} drained; {node_drain(name)} DHCP server(s) moved off")
