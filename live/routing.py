"""Websocket routes of the live view (collected by ``netdash.routing``)."""

from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/tenants/<int:tenant_id>/", LiveConsumer.as_asgi()),
    path("ws/live/all/", LiveConsumer.as_asgi()),
]
