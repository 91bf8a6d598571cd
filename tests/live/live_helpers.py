"""Helpers shared by the live tests (imported as ``live_helpers``; ``tests/live`` is not a package so that
it cannot shadow the ``live`` app)."""

from __future__ import annotations

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator


def app_for(user):
    """The live routes with ``scope["user"]`` preset: tests the consumer without a session round trip.

    (``test_consumer.test_real_stack_*`` goes through netdash.asgi with a real session cookie instead.)
    """
    from live.routing import websocket_urlpatterns

    inner = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        return await inner(dict(scope, user=user), receive, send)

    return app


def communicator(user, path: str) -> WebsocketCommunicator:
    return WebsocketCommunicator(app_for(user), path)


def session_cookie(user, base_url: str) -> dict:
    """A Playwright cookie for a real Django session of ``user`` (what the login form would set)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": base_url}


