"""``manage.py add_member <tenant-slug> <username> [--role member|admin]``: add a user or change their role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import services
from tenants.choices import Role
from tenants.models import Tenant

from .create_tenant import errors_text


class Command(BaseCommand):
    help = "Add an existing user to a tenant (or change their role)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", metavar="tenant-slug")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=Role.MEMBER)

    def handle(self, *args, tenant: str, username: str, role: str, **options) -> None:
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"No tenant with slug {tenant!r}; list them in the admin or create it with "
                               "create_tenant.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}; create it with `manage.py createsuperuser` or the admin.")
        try:
            membership = services.membership_set(tenant=tenant_obj, user=user, role=role)
        except ValidationError as exc:
            raise CommandError(errors_text(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{user.get_username()} is {membership.role} of {tenant_obj.slug}"))
