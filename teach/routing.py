"""Websocket routes of the teaching tools (collected by ``netdash.routing``).

Kwargs are named after the object they select (``instance_id``, ``network_id``); ``kind`` is fixed per route.
"""

from django.urls import path

from .consumers import DiagnosticsConsumer, ShellConsumer

websocket_urlpatterns = []
for _consumer, _what in ((DiagnosticsConsumer, "diagnostics"), (ShellConsumer, "shell")):
    websocket_urlpatterns += [
        path(f"ws/teach/instances/<int:instance_id>/{_what}/", _consumer.as_asgi(), {"kind": "inst"}),
        path(f"ws/teach/networks/<int:network_id>/dhcp/{_what}/", _consumer.as_asgi(), {"kind": "dhcp"}),
        path(f"ws/teach/networks/<int:network_id>/segment/{_what}/", _consumer.as_asgi(), {"kind": "seg"}),
    ]
