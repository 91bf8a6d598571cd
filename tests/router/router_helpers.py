"""Helpers shared by the router tests that run on the real kernel (a plain module: conftest names collide across
test dirs): the simulated upstream's address, its echo service asked from a namespace, and the same service
inside an instance."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from tenants.host import UPSTREAM_ECHO_PORT
from tenants.host.kinds.upstream import SCRIPT

UPSTREAM = "203.0.113.1"  # the simulated upstream on the external network 203.0.113.0/24 (TEST-NET-3)


def ask(ns: str, address: str) -> str:
    """Connect from ``ns`` to the echo service at ``address``: the address the other side saw us as ("" if
    unreachable)."""
    code = ("import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); "
            "print(s.recv(64).decode().strip())")
    done = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code, address, str(UPSTREAM_ECHO_PORT)],
                          capture_output=True, text=True, timeout=20)
    return done.stdout.strip()


@contextlib.contextmanager
def echo_in(ns: str, pid_file: str) -> Iterator[None]:
    """The upstream's echo service inside an instance too (what east-west and floating-IP callers reach); stopped
    by its pid."""
    subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(SCRIPT), str(UPSTREAM_ECHO_PORT), pid_file],
                   check=True, capture_output=True, text=True, timeout=20)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
