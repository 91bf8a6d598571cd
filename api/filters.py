"""The list endpoints' ``?param=value`` filters, as django-filter FilterSets.

The querysets they filter come from the ``*_for_user`` selectors, so a filter naming another tenant's object
finds nothing (an empty page, never a hint that it exists). A malformed value is a 400 with a message: ids must
be ASCII digits within the database's integer range, because a larger number overflowed into a 500 in the
foreign-key lookups (found by schemathesis).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, TextChoices
from drf_spectacular.utils import extend_schema_field

from tenants.choices import LeaseState, ObjectStatus

MAX_ID = 2**63 - 1


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and int(value) <= MAX_ID


class IdField(forms.Field):
    """An object id: ASCII digits within the database's integer range."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if not _is_id(str(value)):
            raise ValidationError("%(value)r is not an id; give a number.", code="invalid_id",
                                  params={"value": str(value)})
        return int(value)


class IdFilter(django_filters.Filter):
    """Objects whose ``field_name`` is this id."""

    field_class = IdField


# The description goes with the type: spectacular reads no help_text from an annotated filter.
@extend_schema_field({"type": "string", "description": "Only objects of this tenant (id or slug)."})
class TenantFilter(django_filters.CharFilter):
    """Objects of the tenant ``field_name`` points at, given by id or slug."""

    def filter(self, qs: QuerySet, value: str) -> QuerySet:
        if value in self.field.empty_values:
            return qs
        by_slug = Q(**{f"{self.field_name}__slug": value})
        # An all-digit slug is legal, so a number matches either the id or such a slug.
        if _is_id(value):
            return qs.filter(Q(**{f"{self.field_name}__pk": int(value)}) | by_slug)
        return qs.filter(by_slug)


def _choice(field_name: str, name: str, choices: type[TextChoices]) -> django_filters.ChoiceFilter:
    """An exact match on one of ``choices``, refusing other values with the list of valid ones."""
    return django_filters.ChoiceFilter(
        field_name=field_name, choices=choices.choices, help_text=f"Only objects with this {name}.",
        error_messages={"invalid_choice": f"Unknown {name} %(value)r; choose one of {', '.join(choices.values)}."},
    )


def _id(field_name: str, name: str) -> IdFilter:
    return IdFilter(field_name=field_name, help_text=f"Only objects of this {name} (id).")


class NetworkFilter(django_filters.FilterSet):
    """``/networks/?tenant=&status=``"""

    tenant = TenantFilter("tenant")
    status = _choice("status", "status", ObjectStatus)


class SubnetFilter(django_filters.FilterSet):
    """``/subnets/?network=&tenant=``"""

    network = _id("network_id", "network")
    tenant = TenantFilter("network__tenant")


class InstanceFilter(django_filters.FilterSet):
    """``/instances/?network=&subnet=&tenant=&status=``"""

    network = _id("network_id", "network")
    subnet = _id("subnet_id", "subnet")
    tenant = TenantFilter("network__tenant")
    status = _choice("status", "status", ObjectStatus)


class LeaseFilter(django_filters.FilterSet):
    """``/leases/?network=&subnet=&instance=&tenant=&status=`` (or ``state=``)"""

    network = _id("subnet__network_id", "network")
    subnet = _id("subnet_id", "subnet")
    instance = _id("instance_id", "instance")
    tenant = TenantFilter("subnet__network__tenant")
    # ``status`` like every other list; ``state``, the model's own name for it, is accepted as well.
    status = _choice("state", "status", LeaseState)
    state = _choice("state", "state", LeaseState)


class RouterFilter(django_filters.FilterSet):
    """``/routers/?tenant=&status=&external_network=``"""

    tenant = TenantFilter("tenant")
    status = _choice("status", "status", ObjectStatus)
    external_network = _id("external_network_id", "external network")


class FloatingIPFilter(django_filters.FilterSet):
    """``/floating-ips/?tenant=&network=&instance=``"""

    tenant = TenantFilter("tenant")
    network = _id("network_id", "external network")
    instance = _id("instance_id", "instance")
