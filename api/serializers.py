"""Serializers: output shapes, and input shapes that only parse — rules are checked by the services.

Input fields are named exactly like the service arguments, so a service error keyed ``cidr`` or ``ip_address``
lands on the field the client sent.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants import selectors, services, validators
from tenants.choices import Role
from tenants.hostspecs import names
from tenants.models import Instance, Lease, Network, Node, Subnet, Tenant
from tenants.nodes import agent_state

# Subnet arguments of network_create's nested ``subnet``: their errors are reported under "subnet".
SUBNET_ERROR_FIELDS = ("cidr", "gateway", "dhcp_address", "allocation_pools", "dns_nameservers", "domain_name",
                       "lease_seconds", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode")


@extend_schema_field(OpenApiTypes.INT)
class UserScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A reference to one of the caller's objects: another tenant's id reads as "does not exist"."""

    def __init__(self, *, scope: str, **kwargs: Any) -> None:
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        user = self.context["request"].user
        return getattr(selectors, self.scope)(user)


# --- tenants -------------------------------------------------------------------------------------------

class QuotaSerializer(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField()


class QuotaUsageSerializer(serializers.Serializer):
    networks = QuotaSerializer()
    subnets = QuotaSerializer()
    instances = QuotaSerializer()
    routers = QuotaSerializer()
    floating_ips = QuotaSerializer()


class TenantSerializer(serializers.ModelSerializer):
    """A tenant the caller belongs to, with the caller's role and quota usage."""

    role = serializers.SerializerMethodField(help_text="The caller's role: member, admin or superuser.")
    quota = serializers.SerializerMethodField()

    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "role", "quota", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=[*Role.values, "superuser"]))
    def get_role(self, tenant: Tenant) -> str:
        user = self.context["request"].user
        membership = tenant.memberships.filter(user=user).first()
        if membership is not None:
            return membership.role
        return "superuser" if user.is_superuser else ""

    @extend_schema_field(QuotaUsageSerializer)
    def get_quota(self, tenant: Tenant) -> dict[str, dict[str, int]]:
        return selectors.quota_usage(tenant)


class TenantRefField(serializers.CharField):
    """A tenant of the caller, given by id or slug."""

    def to_internal_value(self, data: Any) -> Tenant:
        value = str(super().to_internal_value(data)).strip()
        tenants = selectors.tenants_for_user(self.context["request"].user)
        # An id wins over an all-digit slug of another of the caller's tenants.
        tenant = (tenants.filter(pk=int(value)).first() if value.isdigit() else None) or tenants.filter(
            slug=value).first()
        if tenant is None:
            raise serializers.ValidationError(f"You are not a member of a tenant {value!r}; give its id or slug.")
        return tenant

    def to_representation(self, value: Any) -> str:
        return value.slug if isinstance(value, Tenant) else str(value)


# --- subnets -------------------------------------------------------------------------------------------

class PoolSerializer(serializers.Serializer):
    start = serializers.CharField(max_length=45)
    end = serializers.CharField(max_length=45)


class SubnetSettingsSerializer(serializers.Serializer):
    """DHCP settings shared by subnet create, subnet update and a network's first subnet."""

    name = serializers.CharField(required=False, allow_blank=True, max_length=validators.MAX_NAME_LENGTH)
    gateway = serializers.CharField(
        required=False, allow_null=True, max_length=45,
        help_text='An address in the subnet; "auto" (the default on create) = first usable; null = no gateway.',
    )
    dhcp_address = serializers.CharField(
        required=False, allow_null=True, max_length=45,
        help_text="Where dnsmasq listens; null or omitted = first usable address that is not the gateway.",
    )
    allocation_pools = PoolSerializer(
        many=True, required=False,
        help_text="Where IPAM takes instance addresses from (dnsmasq serves only those reservations); "
                  "empty = every usable address except the gateway and DHCP server address.",
    )
    dns_nameservers = serializers.ListField(child=serializers.CharField(max_length=45), required=False,
                                            max_length=validators.MAX_DNS_SERVERS)
    domain_name = serializers.CharField(required=False, allow_blank=True, max_length=validators.MAX_DOMAIN_LENGTH)
    lease_seconds = serializers.IntegerField(required=False, help_text="Lease time in seconds.")
    enable_dhcp = serializers.BooleanField(required=False)


class SubnetInputSerializer(SubnetSettingsSerializer):
    """A new subnet's CIDR and settings (without the network; used nested in network create)."""

    cidr = serializers.CharField(max_length=43, help_text="Network address with prefix, e.g. 192.168.1.0/24.")
    # Plain strings, not choices: the service's message names the valid pairs, a choice error would not.
    ipv6_ra_mode = serializers.CharField(
        required=False, allow_blank=True, max_length=16,
        help_text="IPv6 only: slaac, dhcpv6-stateless or dhcpv6-stateful (equal to the address mode), or blank.",
    )
    ipv6_address_mode = serializers.CharField(
        required=False, allow_blank=True, max_length=16,
        help_text="IPv6 only (required there): slaac, dhcpv6-stateless or dhcpv6-stateful.",
    )

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        data.setdefault("gateway", services.AUTO)
        data.pop("network", None)
        return data


class SubnetCreateSerializer(SubnetInputSerializer):
    network = UserScopedPrimaryKeyField(scope="networks_for_user")
    cidr = serializers.CharField(required=False, allow_blank=True, max_length=43,
                                 help_text="Network address with prefix, e.g. 192.168.1.0/24; none with from_pool.")
    from_pool = serializers.BooleanField(
        required=False, default=False,
        help_text="IPv6: take the next free /64 of the deployment's ULA subnet pool (unique, so it can be routed).")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("from_pool") == bool(attrs.get("cidr", "").strip()):
            raise serializers.ValidationError({"cidr": ["Give a CIDR, or from_pool: true for a /64 from the subnet "
                                                        "pool (not both)."]})
        return attrs

    def service_kwargs(self) -> dict[str, Any]:
        data = super().service_kwargs()
        if data.pop("from_pool"):
            data.pop("cidr", None)
        return data


class SubnetUpdateSerializer(SubnetSettingsSerializer):
    """Changes to a subnet; its network and CIDR are fixed once created."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        subnet: Subnet = self.instance
        errors = {}
        if "cidr" in self.initial_data and str(self.initial_data["cidr"]).strip() != subnet.cidr:
            errors["cidr"] = ["The CIDR cannot change once instances may hold addresses in it; create a new subnet."]
        if "network" in self.initial_data and str(self.initial_data["network"]) != str(subnet.network_id):
            errors["network"] = ["A subnet cannot move to another network."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class SubnetSerializer(serializers.ModelSerializer):
    allocation_pools = serializers.SerializerMethodField()
    tenant = serializers.IntegerField(source="network.tenant_id", read_only=True)

    class Meta:
        model = Subnet
        fields = ["id", "network", "tenant", "name", "cidr", "ip_version", "gateway", "dhcp_address",
                  "allocation_pools", "dns_nameservers", "domain_name", "lease_seconds", "enable_dhcp",
                  "ipv6_ra_mode", "ipv6_address_mode", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(PoolSerializer(many=True))
    def get_allocation_pools(self, subnet: Subnet) -> list[dict[str, str]]:
        return [{"start": p.start, "end": p.end} for p in subnet.allocation_pools.all()]


class SubnetSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Subnet
        fields = ["id", "cidr", "name"]
        read_only_fields = fields


# --- networks ------------------------------------------------------------------------------------------

class NetworkSerializer(serializers.ModelSerializer):
    tenant_slug = serializers.CharField(source="tenant.slug", read_only=True)
    subnets = SubnetSummarySerializer(many=True, read_only=True)
    instance_count = serializers.IntegerField(read_only=True, default=0)
    lease_count = serializers.IntegerField(read_only=True, default=0, help_text="Active leases.")

    class Meta:
        model = Network
        fields = ["id", "tenant", "tenant_slug", "name", "status", "status_reason", "kernel_id", "node", "subnets",
                  "instance_count", "lease_count", "created_at", "updated_at"]
        read_only_fields = fields


MAX_BULK_NETWORKS = 1000  # one POSTed list: a bounded transaction


class NetworkCreateSerializer(serializers.Serializer):
    """A new network, optionally with its first subnet."""

    tenant = TenantRefField(required=False, help_text="Tenant id or slug; needed only if you belong to several.")
    name = serializers.CharField(max_length=validators.MAX_NAME_LENGTH)
    subnet = SubnetInputSerializer(required=False, help_text="Optional first subnet, created in the same step.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tenant" not in attrs:
            tenants = list(selectors.tenants_for_user(self.context["request"].user)[:2])
            if not tenants:
                raise serializers.ValidationError({"tenant": ["You are not a member of any tenant."]})
            if len(tenants) > 1:
                raise serializers.ValidationError(
                    {"tenant": ["You belong to several tenants; say which one (id or slug)."]}
                )
            attrs["tenant"] = tenants[0]
        return attrs

    def service_kwargs(self) -> dict[str, Any]:
        return self.to_service_kwargs(self.validated_data)

    @staticmethod
    def to_service_kwargs(data: dict[str, Any]) -> dict[str, Any]:
        """``network_create``'s arguments from one validated item (also each item of a POSTed list)."""
        subnet = None
        if data.get("subnet") is not None:
            subnet = dict(data["subnet"])
            subnet.setdefault("gateway", services.AUTO)
        return {"tenant": data["tenant"], "name": data["name"], "subnet": subnet}


class NetworkUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=validators.MAX_NAME_LENGTH)


# --- instances -----------------------------------------------------------------------------------------

class InstanceSerializer(serializers.ModelSerializer):
    tenant = serializers.IntegerField(source="network.tenant_id", read_only=True)
    namespace = serializers.SerializerMethodField(help_text="The network namespace standing in for the instance.")

    class Meta:
        model = Instance
        fields = ["id", "network", "subnet", "tenant", "hostname", "kernel_id", "namespace", "mac_address",
                  "ip_address", "fixed_ip", "ipv6_subnet", "ipv6_address", "status", "status_reason", "created_at",
                  "updated_at"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_namespace(self, instance: Instance) -> str:
        return names().inst_ns(instance.kernel_id)


MAX_BULK_INSTANCES = 1000  # one POSTed list: a bounded transaction (quotas and the subnet's size still apply)


class InstanceCreateSerializer(serializers.Serializer):
    network = UserScopedPrimaryKeyField(scope="networks_for_user")
    subnet = UserScopedPrimaryKeyField(scope="subnets_for_user", required=False, allow_null=True,
                                       help_text="Default: the network's first subnet.")
    hostname = serializers.CharField(max_length=validators.MAX_HOSTNAME_LENGTH)
    ip_address = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=45,
                                       help_text="A fixed IP; omitted = next free address of the subnet.")


class InstanceUpdateSerializer(serializers.Serializer):
    ip_address = serializers.CharField(allow_null=True, allow_blank=True, max_length=45,
                                       help_text="Pin this address; null = stop pinning (keep the current one).")


# --- leases --------------------------------------------------------------------------------------------

class LeaseSerializer(serializers.ModelSerializer):
    network = serializers.IntegerField(source="subnet.network_id", read_only=True)

    class Meta:
        model = Lease
        fields = ["id", "network", "subnet", "instance", "ip_address", "mac_address", "hostname", "state",
                  "expires_at", "created_at", "updated_at"]
        read_only_fields = fields


# --- nodes ---------------------------------------------------------------------------------------------

class NodeSerializer(serializers.ModelSerializer):
    agent_state = serializers.SerializerMethodField(
        help_text="live, draining or down: the state joined with the heartbeat (a silent node is down).")

    class Meta:
        model = Node
        fields = ["id", "name", "vtep_address", "dhcp", "compute", "state", "agent_state", "heartbeat_at",
                  "registered_at"]
        read_only_fields = fields

    def get_agent_state(self, node: Node) -> str:
        return str(agent_state(node.state, node.heartbeat_at))


class NodeDrainSerializer(NodeSerializer):
    dhcp_duties_moved = serializers.IntegerField(read_only=True, help_text="DHCP servers moved to other nodes.")

    class Meta(NodeSerializer.Meta):
        fields = [*NodeSerializer.Meta.fields, "dhcp_duties_moved"]
        read_only_fields = fields
