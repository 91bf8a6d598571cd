"""REST API v1 viewsets: querysets from selectors (other tenants' rows do not exist), writes through services.

Each viewset names its URL kwarg after its object (``network_id``, …) rather than ``pk``, so the route-walking
isolation test can supply "another tenant's object" for every route by kwarg name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import failover, selectors, services, subnet_pools
from tenants.choices import NodeState

from . import filters
from . import serializers as s
from .authentication import BearerTokenAuthentication
from .errors import service_errors, to_drf
from .throttling import ApiWriteThrottle

# --- base ----------------------------------------------------------------------------------------------

class ApiViewSet(viewsets.GenericViewSet):
    """Bearer token or session (with CSRF) auth; any service ValidationError becomes a 400."""

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ApiWriteThrottle]
    filter_backends = [DjangoFilterBackend]
    lookup_value_regex = r"[0-9]+"

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, DjangoValidationError):
            exc = to_drf(exc)
        return super().handle_exception(exc)

    def _input(self, serializer_class: type, **kwargs: Any):
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context(), **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer


class PatchLikePut:
    """PATCH is PUT here: every writable field of an update body is optional anyway."""

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.update(request, *args, **kwargs)  # type: ignore[attr-defined]


def _resource_schema(*, plural: str, one: str, out: type, create: tuple[str, type], update: tuple[str, type],
                     destroy: tuple[str, dict[int, Any]]) -> Callable[[type], type]:
    """OpenAPI summaries of a list/retrieve/create/update/destroy viewset (``(summary, serializer)`` pairs)."""
    changed = extend_schema(summary=update[0], request=update[1], responses=out)
    return extend_schema_view(
        list=extend_schema(summary=f"List {plural}"),
        retrieve=extend_schema(summary=f"Get {one}"),
        create=extend_schema(summary=create[0], request=create[1], responses={201: out}),
        update=changed,
        partial_update=changed,
        destroy=extend_schema(summary=destroy[0], responses=destroy[1]),
    )


# --- tenants -------------------------------------------------------------------------------------------

@extend_schema_view(list=extend_schema(summary="Your tenants"), retrieve=extend_schema(summary="One of your tenants"))
class TenantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The tenants the caller belongs to (superusers: all). Read-only: administrators create tenants."""

    serializer_class = s.TenantSerializer
    lookup_url_kwarg = "tenant_id"

    def get_queryset(self) -> QuerySet:
        return selectors.tenants_for_user(self.request.user).order_by("name")


# --- networks ------------------------------------------------------------------------------------------

@_resource_schema(
    plural="networks", one="a network", out=s.NetworkSerializer,
    create=("Create a network (optionally with its first subnet); POST a list of them to create all or none",
            s.NetworkCreateSerializer),
    update=("Rename a network", s.NetworkUpdateSerializer),
    destroy=("Delete a network (asynchronous: status becomes 'deleting')", {202: s.NetworkSerializer}),
)
class NetworkViewSet(PatchLikePut, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Networks of the caller's tenants. Realising and tearing down happen in the host agent, after the request."""

    filterset_class = filters.NetworkFilter
    serializer_class = s.NetworkSerializer
    lookup_url_kwarg = "network_id"

    def get_queryset(self) -> QuerySet:
        return selectors.networks_with_counts(selectors.networks_for_user(self.request.user)).order_by(
            "tenant__name", "name")

    def _out(self, network, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().filter(pk=network.pk).first() or network
        return Response(s.NetworkSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.data, list):
            return self._create_many(request)
        data = self._input(s.NetworkCreateSerializer)
        with service_errors(nest=s.SUBNET_ERROR_FIELDS, under="subnet"):
            network = services.network_create(actor=request.user, **data.service_kwargs())
        return self._out(network, status.HTTP_201_CREATED)

    def _create_many(self, request: Request) -> Response:
        """A POSTed list: every network or none (NetBox's bulk create), one transaction and one job pipeline."""
        if not 1 <= len(request.data) <= s.MAX_BULK_NETWORKS:
            raise ValidationError(
                {"non_field_errors": [f"Send 1 to {s.MAX_BULK_NETWORKS} networks in one list."]})
        items = [s.NetworkCreateSerializer.to_service_kwargs(d) for d in self._input(
            s.NetworkCreateSerializer, many=True).validated_data]
        tenants = {item["tenant"].pk for item in items}
        if len(tenants) > 1:
            raise ValidationError(
                {"tenant": ["All networks of one list go to one tenant; send a list per tenant."]})
        with service_errors():
            made = services.network_create_many(tenant=items[0]["tenant"], actor=request.user, networks=[
                {"name": item["name"], "subnet": item["subnet"]} for item in items])
        fresh = self.get_queryset().filter(pk__in=[n.pk for n in made]).order_by("pk")
        return Response(s.NetworkSerializer(fresh, many=True, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        network = self.get_object()
        data = self._input(s.NetworkUpdateSerializer)
        with service_errors():
            services.network_update(network=network, name=data.validated_data["name"], actor=request.user)
        return self._out(network)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        network = self.get_object()
        services.network_delete(network=network, actor=request.user)
        return self._out(network, status.HTTP_202_ACCEPTED)


# --- subnets -------------------------------------------------------------------------------------------

@_resource_schema(
    plural="subnets", one="a subnet", out=s.SubnetSerializer,
    create=("Add a subnet to a network", s.SubnetCreateSerializer),
    update=("Change a subnet's DHCP settings", s.SubnetUpdateSerializer),
    destroy=("Delete a subnet without instances", {204: None}),
)
class SubnetViewSet(PatchLikePut, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Subnets of the caller's networks. A change reloads the network's dnsmasq in the host agent."""

    filterset_class = filters.SubnetFilter
    serializer_class = s.SubnetSerializer
    lookup_url_kwarg = "subnet_id"

    def get_queryset(self) -> QuerySet:
        return selectors.subnets_for_user(self.request.user).order_by("id")

    def _out(self, subnet, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=subnet.pk)
        return Response(s.SubnetSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(s.SubnetCreateSerializer)
        create = subnet_pools.subnet_create_from_pool if data.validated_data["from_pool"] else services.subnet_create
        with service_errors():
            subnet = create(network=data.validated_data["network"], actor=request.user, **data.service_kwargs())
        return self._out(subnet, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        subnet = self.get_object()
        data = s.SubnetUpdateSerializer(subnet, data=request.data, partial=True,
                                        context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        with service_errors():
            services.subnet_update(subnet=subnet, actor=request.user, **data.validated_data)
        return self._out(subnet)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        subnet = self.get_object()
        with service_errors():
            services.subnet_delete(subnet=subnet, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- instances -----------------------------------------------------------------------------------------

@_resource_schema(
    plural="instances", one="an instance", out=s.InstanceSerializer,
    create=("Create an instance (IP allocated now, realised asynchronously); POST a list of them, all on one "
            "network and subnet, to create all or none", s.InstanceCreateSerializer),
    update=("Set or clear an instance's fixed IP", s.InstanceUpdateSerializer),
    destroy=("Delete an instance (asynchronous: status becomes 'deleting')", {202: s.InstanceSerializer}),
)
class InstanceViewSet(PatchLikePut, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Instances of the caller's networks: the address is allocated at once, the namespace made by the agent."""

    filterset_class = filters.InstanceFilter
    serializer_class = s.InstanceSerializer
    lookup_url_kwarg = "instance_id"

    def get_queryset(self) -> QuerySet:
        return selectors.instances_for_user(self.request.user).order_by("network_id", "hostname")

    def _out(self, instance, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.InstanceSerializer(instance, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.data, list):
            return self._create_many(request)
        data = self._input(s.InstanceCreateSerializer).validated_data
        with service_errors():
            instance = services.instance_create(
                network=data["network"], subnet=data.get("subnet"), hostname=data["hostname"],
                ip_address=(data.get("ip_address") or "").strip() or None, actor=request.user,
            )
        return self._out(instance, status.HTTP_201_CREATED)

    def _create_many(self, request: Request) -> Response:
        """A POSTed list: every instance or none (NetBox's bulk create) on one network and subnet, one transaction
        and one agent job per node for each batch."""
        if not 1 <= len(request.data) <= s.MAX_BULK_INSTANCES:
            raise ValidationError(
                {"non_field_errors": [f"Send 1 to {s.MAX_BULK_INSTANCES} instances in one list."]})
        items = self._input(s.InstanceCreateSerializer, many=True).validated_data
        if len({d["network"].pk for d in items}) > 1:
            raise ValidationError(
                {"network": ["All instances of one list go to one network; send a list per network."]})
        if len({getattr(d.get("subnet"), "pk", None) for d in items}) > 1:
            raise ValidationError({"subnet": ["All instances of one list go to one subnet (or all omit it)."]})
        with service_errors():
            made = services.instance_create_many(
                network=items[0]["network"], subnet=items[0].get("subnet"), actor=request.user,
                items=[{"hostname": d["hostname"], "ip_address": (d.get("ip_address") or "").strip() or None}
                       for d in items])
        fresh = self.get_queryset().filter(pk__in=[i.pk for i in made]).order_by("pk")
        return Response(s.InstanceSerializer(fresh, many=True, context=self.get_serializer_context()).data,
                        status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        data = self._input(s.InstanceUpdateSerializer).validated_data
        with service_errors():
            services.instance_update(instance=instance, ip_address=(data["ip_address"] or "").strip() or None,
                                     actor=request.user)
        return self._out(instance)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        services.instance_delete(instance=instance, actor=request.user)
        return self._out(instance, status.HTTP_202_ACCEPTED)


# --- leases --------------------------------------------------------------------------------------------

@extend_schema_view(
    list=extend_schema(summary="List DHCP leases"),
    retrieve=extend_schema(summary="Get a lease"),
)
class LeaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """DHCP leases as dnsmasq reports them (read-only; kept after release for history)."""

    filterset_class = filters.LeaseFilter
    serializer_class = s.LeaseSerializer
    lookup_url_kwarg = "lease_id"

    def get_queryset(self) -> QuerySet:
        return selectors.leases_for_user(self.request.user).order_by("subnet_id", "ip_address", "id")


# --- nodes ---------------------------------------------------------------------------------------------

@extend_schema_view(
    list=extend_schema(summary="List nodes (superusers only)"),
    retrieve=extend_schema(summary="Get a node (superusers only)"),
)
class NodeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """The nodes running agents: agents register them, superusers drain and undrain them. Other users get an
    empty list (and a 404 for any one node)."""

    serializer_class = s.NodeSerializer
    lookup_url_kwarg = "node_id"

    def get_queryset(self) -> QuerySet:
        return selectors.nodes_for_user(self.request.user).order_by("name")

    @extend_schema(summary="Drain a node: it takes no new work and its DHCP duties move to other live nodes",
                   request=None, responses=s.NodeDrainSerializer)
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        node = self.get_object()
        moved = failover.node_drain(node.name)
        node.refresh_from_db()
        node.dhcp_duties_moved = moved
        return Response(s.NodeDrainSerializer(node).data)

    @extend_schema(summary="Undrain a node: it takes new work again (moved duties stay where they went)",
                   request=None, responses=s.NodeSerializer)
    @action(detail=True, methods=["post"])
    def undrain(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        node = self.get_object()
        if node.state != NodeState.DRAINED:
            return Response({"state": [f"Node {node.name} is {node.state}, not drained."]},
                            status=status.HTTP_400_BAD_REQUEST)
        failover.node_undrain(node.name)
        node.refresh_from_db()
        return Response(s.NodeSerializer(node).data)
