"""Portal pages. URL kwargs are named after the object they select (``network_id``, ``subnet_id``, …) so the
isolation test can fill every route with "the other tenant's object" by kwarg name alone."""

from django.urls import path

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.network_list, name="network-list"),
    path("tenant/switch/", views.tenant_switch, name="tenant-switch"),
    path("tenants/", views.tenant_list, name="tenant-list"),
    path("tenants/<slug:tenant_slug>/members/", views.member_list, name="member-list"),
    path("tenants/<slug:tenant_slug>/members/<int:membership_id>/role/", views.member_role, name="member-role"),
    path("tenants/<slug:tenant_slug>/members/<int:membership_id>/remove/", views.member_remove,
         name="member-remove"),
    path("tenants/<slug:tenant_slug>/audit/", views.audit_log, name="audit-log"),
    path("networks/new/", views.network_create, name="network-create"),
    path("networks/<int:network_id>/", views.network_detail, name="network-detail"),
    path("networks/<int:network_id>/edit/", views.network_edit, name="network-edit"),
    path("networks/<int:network_id>/delete/", views.network_delete, name="network-delete"),
    path("networks/<int:network_id>/subnets/new/", views.subnet_create, name="subnet-create"),
    path("networks/<int:network_id>/instances/new/", views.instance_create, name="instance-create"),
    path("subnets/<int:subnet_id>/edit/", views.subnet_edit, name="subnet-edit"),
    path("subnets/<int:subnet_id>/delete/", views.subnet_delete, name="subnet-delete"),
    path("instances/<int:instance_id>/", views.instance_detail, name="instance-detail"),
    path("instances/<int:instance_id>/edit/", views.instance_edit, name="instance-edit"),
    path("instances/<int:instance_id>/delete/", views.instance_delete, name="instance-delete"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
]
