"""REST API v1 for routers, external networks and floating IPs: querysets from the ``*_for_user`` selectors
(another tenant's row is a 404), writes through ``tenants.routers``. URL kwargs are named after the object, as
in ``views``, so the isolation walk can supply another tenant's object for each."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tenants import routers, selectors
from tenants.models import RouterInterface

from . import filters
from . import router_serializers as s
from .errors import service_errors
from .views import ApiViewSet, PatchLikePut, _resource_schema


@extend_schema_view(list=extend_schema(summary="List external networks"),
                    retrieve=extend_schema(summary="Get an external network"))
class ExternalNetworkViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Networks an administrator made external: every tenant may read them and use them for router gateways and
    floating IPs."""

    serializer_class = s.ExternalNetworkSerializer
    lookup_url_kwarg = "external_network_id"

    def get_queryset(self) -> QuerySet:
        return selectors.external_networks_for_user(self.request.user).order_by("name", "id")


@_resource_schema(
    plural="routers", one="a router", out=s.RouterSerializer,
    create=("Create a router (optionally with its gateway)", s.RouterCreateSerializer),
    update=("Set or clear a router's external gateway", s.RouterUpdateSerializer),
    destroy=("Delete a router (asynchronous; its floating IPs are disassociated)", {202: s.RouterSerializer}),
)
class RouterViewSet(PatchLikePut, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Routers of the caller's tenants; subnets are attached with ``add-interface`` / ``remove-interface``."""

    filterset_class = filters.RouterFilter
    serializer_class = s.RouterSerializer
    lookup_url_kwarg = "router_id"

    def get_queryset(self) -> QuerySet:
        return selectors.routers_for_user(self.request.user).order_by("tenant__name", "name")

    def _out(self, router, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().filter(pk=router.pk).first() or router
        return Response(s.RouterSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(s.RouterCreateSerializer).validated_data
        with service_errors():
            router = routers.router_create(tenant=data["tenant"], name=data["name"],
                                           external_network=data.get("external_network"), actor=request.user)
        return self._out(router, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        router = self.get_object()
        external = self._input(s.RouterUpdateSerializer).validated_data["external_network"]
        with service_errors():
            if external is None:
                routers.router_clear_gateway(router=router, actor=request.user)
            else:
                routers.router_set_gateway(router=router, external_network=external, actor=request.user)
        return self._out(router)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        router = self.get_object()
        routers.router_delete(router=router, actor=request.user)
        return self._out(router, status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Attach a subnet (the router takes its gateway address)",
                   request=s.RouterInterfaceInputSerializer, responses=s.RouterSerializer)
    @action(detail=True, methods=["post"], url_path="add-interface")
    def add_interface(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        router = self.get_object()
        subnet = self._input(s.RouterInterfaceInputSerializer).validated_data["subnet"]
        with service_errors():
            routers.router_interface_add(router=router, subnet=subnet, actor=request.user)
        return self._out(router)

    @extend_schema(summary="Detach a subnet", request=s.RouterInterfaceInputSerializer, responses=s.RouterSerializer)
    @action(detail=True, methods=["post"], url_path="remove-interface")
    def remove_interface(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        router = self.get_object()
        subnet = self._input(s.RouterInterfaceInputSerializer).validated_data["subnet"]
        interface = RouterInterface.objects.filter(router=router, subnet=subnet).select_related("router", "subnet")
        if not interface.exists():
            return Response({"subnet": [f"Subnet {subnet.cidr} is not attached to this router."]},
                            status=status.HTTP_400_BAD_REQUEST)
        with service_errors():
            routers.router_interface_remove(interface=interface.get(), actor=request.user)
        return self._out(router)


@_resource_schema(
    plural="floating IPs", one="a floating IP", out=s.FloatingIPSerializer,
    create=("Allocate a floating IP from an external network", s.FloatingIPCreateSerializer),
    update=("Associate a floating IP to an instance, or disassociate it", s.FloatingIPUpdateSerializer),
    destroy=("Release a floating IP", {204: None}),
)
class FloatingIPViewSet(PatchLikePut, mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    """Floating IPs of the caller's tenants."""

    filterset_class = filters.FloatingIPFilter
    serializer_class = s.FloatingIPSerializer
    lookup_url_kwarg = "floating_ip_id"

    def get_queryset(self) -> QuerySet:
        return selectors.floating_ips_for_user(self.request.user).order_by("tenant__name", "address", "id")

    def _out(self, fip, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().filter(pk=fip.pk).first() or fip
        return Response(s.FloatingIPSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = self._input(s.FloatingIPCreateSerializer).validated_data
        with service_errors():
            fip = routers.floating_ip_allocate(tenant=data["tenant"], external_network=data["external_network"],
                                               actor=request.user)
        return self._out(fip, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        fip = self.get_object()
        instance = self._input(s.FloatingIPUpdateSerializer).validated_data["instance"]
        with service_errors():
            if instance is None:
                routers.floating_ip_disassociate(floating_ip=fip, actor=request.user)
            else:
                routers.floating_ip_associate(floating_ip=fip, instance=instance, actor=request.user)
        return self._out(fip)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        fip = self.get_object()
        with service_errors():
            routers.floating_ip_release(floating_ip=fip, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
