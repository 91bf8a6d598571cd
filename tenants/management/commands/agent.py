"""``manage.py agent``: run this node's host agent (RQ worker + lease watcher + monitor + reconcile)."""

from django.core.management.base import BaseCommand

from tenants.agent import Agent


class Command(BaseCommand):
    help = "Run the host agent for this node: realise networks, watch leases, restart dead dnsmasq, reconcile."
    # The agent serves no HTTP: the system checks would import every interface app's URLs, and a broken page
    # module must not keep a network node from serving DHCP. (Its own imports still fail loudly.)
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
        parser.add_argument("--node", help="node name (default: NETDASH_NODE)")

    def handle(self, *args, **options) -> None:
        Agent(node=options["node"]).run(burst=options["burst"])
