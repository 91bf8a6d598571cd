"""Helpers for the teach tests (imported as ``teach_helpers``; ``tests/teach`` is not a package so that it
cannot shadow the ``teach`` app)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator


def communicator(user, path: str) -> WebsocketCommunicator:
    """The teach websocket routes with ``scope["user"]`` preset."""
    from teach.routing import websocket_urlpatterns

    inner = URLRouter(websocket_urlpatterns)

    async def app(scope, receive, send):
        return await inner(dict(scope, user=user), receive, send)

    return WebsocketCommunicator(app, path)


async def receive_until(comm: WebsocketCommunicator, predicate, timeout: float = 40.0) -> list[dict]:
    """Collect JSON frames until ``predicate(frame)`` holds; return all of them."""
    frames = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out; frames so far: {frames[-10:]}")
        frame = await comm.receive_json_from(timeout=remaining)
        frames.append(frame)
        if predicate(frame):
            return frames


def asynctest(fn):
    """Run an async test body under ``async_to_sync`` (no pytest-asyncio here); fixtures pass through."""
    import functools

    from asgiref.sync import async_to_sync

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return async_to_sync(fn)(*args, **kwargs)

    return wrapper


def ask_upstream(ns: str, address: str, port: int = 7007) -> str:
    """Connect from ``ns`` to the echo service at ``address``: the address it saw us as ("" if unreachable)."""
    code = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); "
            "print(s.recv(64).decode().strip())")
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, address, str(port)],
                          capture_output=True, text=True, timeout=20)
    return done.stdout.strip()
