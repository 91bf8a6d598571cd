"""``manage.py create_tenant <slug> --name "Acme Corp"``: create a tenant through the service."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services


def errors_text(exc: ValidationError) -> str:
    """One line per message, prefixed with the field it is about."""
    if hasattr(exc, "error_dict"):
        return "\n".join(f"{field}: {m}" for field, messages in exc.message_dict.items() for m in messages)
    return "\n".join(exc.messages)


class Command(BaseCommand):
    help = "Create a tenant (name defaults to the slug)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", help="Display name (default: the slug).")
        for kind in ("networks", "subnets", "instances"):
            parser.add_argument(f"--quota-{kind}", type=int, help=f"Maximum number of {kind}.")

    def handle(self, *args, slug: str, name: str | None, **options) -> None:
        quotas = {f"quota_{k}": options[f"quota_{k}"] for k in ("networks", "subnets", "instances")
                  if options.get(f"quota_{k}") is not None}
        try:
            tenant = services.tenant_create(name=name or slug, slug=slug, **quotas)
        except ValidationError as exc:
            raise CommandError(errors_text(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"created tenant {tenant.slug} ({tenant.name}), id {tenant.pk}"))
