"""Helpers shared by host tests (a plain module; conftest names collide across test dirs)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def ns_exec(ns: str, *argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace, like a person would."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=check,
                          timeout=timeout)


def wait_for(pred: Callable[[], object], timeout: float = 5.0, step: float = 0.01) -> object:
    """Poll ``pred`` until truthy; return its value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)
