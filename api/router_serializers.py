"""Serializers of routers, external networks and floating IPs (issue 14): output shapes, and inputs that only
parse — the rules live in ``tenants.routers``. Input fields are named like the service arguments."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import validators
from tenants.hostspecs import names
from tenants.models import FloatingIP, Network, Router, RouterInterface

from .serializers import NetworkCreateSerializer, SubnetSummarySerializer, TenantRefField, UserScopedPrimaryKeyField


def _external_network(**kwargs: Any) -> UserScopedPrimaryKeyField:
    return UserScopedPrimaryKeyField(scope="external_networks_for_user", **kwargs)


class ExternalNetworkSerializer(serializers.ModelSerializer):
    """An external network as every tenant sees it: read-only, no owner, no internals."""

    subnets = SubnetSummarySerializer(many=True, read_only=True)

    class Meta:
        model = Network
        fields = ["id", "name", "status", "subnets"]
        read_only_fields = fields


class RouterInterfaceSerializer(serializers.ModelSerializer):
    cidr = serializers.CharField(source="subnet.cidr", read_only=True)
    ip_address = serializers.IPAddressField(source="subnet.gateway", read_only=True,
                                            help_text="The subnet's gateway address, held by the router.")
    network = serializers.IntegerField(source="subnet.network_id", read_only=True)

    class Meta:
        model = RouterInterface
        fields = ["id", "subnet", "network", "cidr", "ip_address"]
        read_only_fields = fields


class RouterSerializer(serializers.ModelSerializer):
    interfaces = RouterInterfaceSerializer(many=True, read_only=True)
    namespace = serializers.SerializerMethodField(help_text="The router's network namespace.")

    class Meta:
        model = Router
        fields = ["id", "tenant", "name", "status", "status_reason", "kernel_id", "node", "namespace",
                  "external_network", "external_ip", "interfaces", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_namespace(self, router: Router) -> str:
        return names().router_ns(router.kernel_id)


class RouterCreateSerializer(serializers.Serializer):
    tenant = TenantRefField(required=False, help_text="Tenant id or slug; needed only if you belong to several.")
    name = serializers.CharField(max_length=validators.MAX_NAME_LENGTH)
    external_network = _external_network(required=False, allow_null=True,
                                         help_text="Gateway to this external network (see /external-networks/).")

    validate = NetworkCreateSerializer.validate  # the same "which of your tenants" rule


class RouterUpdateSerializer(serializers.Serializer):
    external_network = _external_network(allow_null=True, help_text="Set the gateway; null = clear it.")


class RouterInterfaceInputSerializer(serializers.Serializer):
    subnet = UserScopedPrimaryKeyField(scope="subnets_for_user", help_text="One of your subnets.")


class FloatingIPSerializer(serializers.ModelSerializer):
    router = serializers.SerializerMethodField(help_text="The router translating it (derived from the instance).")

    class Meta:
        model = FloatingIP
        fields = ["id", "tenant", "network", "address", "instance", "router", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.INT)
    def get_router(self, fip: FloatingIP) -> int | None:
        router = fip.router
        return router.pk if router else None


class FloatingIPCreateSerializer(serializers.Serializer):
    tenant = TenantRefField(required=False, help_text="Tenant id or slug; needed only if you belong to several.")
    external_network = _external_network(help_text="The external network to take the address from.")

    validate = NetworkCreateSerializer.validate


class FloatingIPUpdateSerializer(serializers.Serializer):
    instance = UserScopedPrimaryKeyField(scope="instances_for_user", allow_null=True,
                                         help_text="Associate to this instance (moving it); null = disassociate.")
