"""``manage.py reconcile``: converge the host to the database now and report what changed."""

from django.core.management.base import BaseCommand

from tenants.jobs import reconcile


class Command(BaseCommand):
    help = "Compare the database with the host and converge both ways; print what changed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--node", help="node name (default: NETDASH_NODE)")

    def handle(self, *args, **options) -> None:
        report = reconcile(options["node"])
        for line in report.lines():
            self.stdout.write(line)
        if report.errors:
            raise SystemExit(1)
