"""Websocket routes of the interface apps that have them (``<app>.routing``)."""

from live.routing import websocket_urlpatterns as live_routes
from teach.routing import websocket_urlpatterns as teach_routes

websocket_urlpatterns: list = [*live_routes, *teach_routes]
