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
    path("lab/", views.lab, name="lab"),
    path("lab/build/", views.lab_build, name="lab-build"),
    path("lab/teardown/", views.lab_teardown, name="lab-teardown"),
    path("instances/<int:instance_id>/", views.inspect, {"kind": "inst"}, name="instance-inspect"),
    path("instances/<int:instance_id>/shell/", views.shell, {"kind": "inst"}, name="instance-shell"),
    path("instances/<int:instance_id>/commands/", views.instance_commands, name="instance-commands"),
    path("networks/<int:network_id>/dhcp/", views.inspect, {"kind": "dhcp"}, name="dhcp-inspect"),
    path("networks/<int:network_id>/dhcp/shell/", views.shell, {"kind": "dhcp"}, name="dhcp-shell"),
    path("networks/<int:network_id>/segment/", views.inspect, {"kind": "seg"}, name="segment-inspect"),
    path("networks/<int:network_id>/segment/shell/", views.shell, {"kind": "seg"}, name="segment-shell"),
    path("networks/<int:network_id>/commands/", views.network_commands, name="network-commands"),
]
