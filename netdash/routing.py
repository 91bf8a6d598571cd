"""Websocket routes, gathered from the interface apps that provide them (``<app>.routing``)."""

from importlib import import_module

from django.apps import apps

websocket_urlpatterns: list = []
for _app in ("live", "teach"):
    if apps.is_installed(_app):
        websocket_urlpatterns += import_module(f"{_app}.routing").websocket_urlpatterns
