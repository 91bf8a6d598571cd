"""``manage.py teardown_host``: remove every namespace, process and state file with this node's prefix.

The database is untouched, so the next agent start (reconcile) rebuilds everything: this is what `make run`
does on Ctrl-C, and what the test runner uses as a safety net.
"""

from django.core.management.base import BaseCommand

from tenants.hostspecs import driver


class Command(BaseCommand):
    help = ("Remove all host state (namespaces, overlay included, dnsmasq/udhcpc processes, state files) carrying "
            "NETDASH_PREFIX.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **options) -> None:
        found = driver().remove_orphans(set(), set(), wanted_routers=set())
        driver().remove_overlay()
        if not options["quiet"]:
            self.stdout.write(f"removed {len(found.networks)} network(s) and {len(found.instances)} instance(s) "
                              f"with prefix {driver().config.prefix!r} (and {len(found.routers)} router(s))")
