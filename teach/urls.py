"""Pages of the teaching tools (mounted at /teach/ by ``netdash.urls``).

URL kwargs are named after the object they select (``instance_id``, ``network_id``); which namespace of a
network (DHCP or segment) is fixed per route through the ``kind`` default.
"""

from django.urls import path

from . import views

app_name = "teach"

urlpatterns = [
    path("", views.index, name="index"),
    path("compare/", views.compare, name="compare"),
    path("lab/", views.labs, name="lab"),
    path("lab/start/", views.lab_start, name="lab-start"),
    path("lab/<int:lab_id>/", views.lab_detail, name="lab-detail"),
    path("lab/<int:lab_id>/notice/", views.lab_notice, name="lab-notice"),
    path("lab/<int:lab_id>/end/", views.lab_end, name="lab-end"),
    path("lab/<int:lab_id>/failover/fail/", views.lab_failover_fail, name="lab-failover-fail"),
    path("lab/<int:lab_id>/failover/restore/", views.lab_failover_restore, name="lab-failover-restore"),
    path("classrooms/<int:classroom_id>/labs/", views.classroom_labs, name="classroom-labs"),
    path("instances/<int:instance_id>/", views.inspect, {"kind": "inst"}, name="instance-inspect"),
    path("instances/<int:instance_id>/shell/", views.shell, {"kind": "inst"}, name="instance-shell"),
    path("instances/<int:instance_id>/commands/", views.instance_commands, name="instance-commands"),
    path("networks/<int:network_id>/dhcp/", views.inspect, {"kind": "dhcp"}, name="dhcp-inspect"),
    path("networks/<int:network_id>/dhcp/shell/", views.shell, {"kind": "dhcp"}, name="dhcp-shell"),
    path("networks/<int:network_id>/segment/", views.inspect, {"kind": "seg"}, name="segment-inspect"),
    path("networks/<int:network_id>/segment/shell/", views.shell, {"kind": "seg"}, name="segment-shell"),
    path("networks/<int:network_id>/commands/", views.network_commands, name="network-commands"),
    path("routers/<int:router_id>/", views.router_inspect, name="router-inspect"),
    path("routers/<int:router_id>/commands/", views.router_commands, name="router-commands"),
]
