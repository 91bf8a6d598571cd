"""/api/v1/: resources, the OpenAPI document and a self-hosted docs page."""

from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.routers import DefaultRouter

from . import docs, router_views, views

app_name = "api"

router = DefaultRouter()
router.register("tenants", views.TenantViewSet, basename="tenant")
router.register("networks", views.NetworkViewSet, basename="network")
router.register("subnets", views.SubnetViewSet, basename="subnet")
router.register("instances", views.InstanceViewSet, basename="instance")
router.register("leases", views.LeaseViewSet, basename="lease")
router.register("routers", router_views.RouterViewSet, basename="router")
router.register("floating-ips", router_views.FloatingIPViewSet, basename="floating-ip")
router.register("external-networks", router_views.ExternalNetworkViewSet, basename="external-network")
router.register("nodes", views.NodeViewSet, basename="node")

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="schema"),
    path("docs/", docs.api_docs, name="docs"),
    path("", include(router.urls)),
]
