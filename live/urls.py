"""Pages of the live view (mounted at /live/ by ``netdash.urls``)."""

from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
    path("", views.index, name="index"),
    path("all/", views.all_tenants, name="all"),
    path("tenants/<int:tenant_id>/", views.tenant_topology, name="tenant"),
    path("subnets/<int:subnet_id>/", views.subnet_leases, name="subnet-leases"),
]
