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
    path("routers/", views.router_list, name="router-list"),
    path("routers/new/", views.router_create, name="router-create"),
    path("routers/<int:router_id>/", views.router_detail, name="router-detail"),
    path("routers/<int:router_id>/delete/", views.router_delete, name="router-delete"),
    path("routers/<int:router_id>/interfaces/", views.router_interface_add, name="router-interface-add"),
    path("routers/<int:router_id>/interfaces/<int:subnet_id>/remove/", views.router_interface_remove,
         name="router-interface-remove"),
    path("routers/<int:router_id>/gateway/", views.router_gateway_set, name="router-gateway-set"),
    path("routers/<int:router_id>/gateway/clear/", views.router_gateway_clear, name="router-gateway-clear"),
    path("floating-ips/", views.floating_ip_list, name="floating-ip-list"),
    path("floating-ips/<int:floating_ip_id>/", views.floating_ip_detail, name="floating-ip-detail"),
    path("floating-ips/<int:floating_ip_id>/disassociate/", views.floating_ip_disassociate,
         name="floating-ip-disassociate"),
    path("floating-ips/<int:floating_ip_id>/release/", views.floating_ip_release, name="floating-ip-release"),
    path("nodes/", views.node_list, name="node-list"),
    path("nodes/<int:node_id>/", views.node_detail, name="node-detail"),
    path("nodes/<int:node_id>/drain/", views.node_drain, name="node-drain"),
    path("nodes/<int:node_id>/undrain/", views.node_undrain, name="node-undrain"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
]
