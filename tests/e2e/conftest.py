"""The whole stack for end-to-end browser tests: daphne AND a real agent (``manage.py agent``) as subprocesses.

Both point at the file-based test database and this run's Redis, kernel-name prefix and state directory (the
environment ``scripts/test.sh`` exports), so what Chromium shows was done by the real agent on the real kernel.

Teardown, even after a failure: the agent and daphne are stopped by their pids (never by name), the agent queue
and network locks are emptied, and everything on the host with this run's prefix is removed.
Patterns follow ``tests/live/conftest.py`` (daphne) and ``tests/faults/conftest.py`` (agent processes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from rq import Worker

from tenants import locks
from tenants.testing import require_root

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts"))
START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clear_queue() -> None:
    """No queued, failed or "started" agent jobs and no network locks (a killed agent leaves both)."""
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    queue.empty()
    for job_id in queue.failed_job_registry.get_job_ids():
        queue.failed_job_registry.remove(job_id, delete_job=True)
    keys = [queue.started_job_registry.key, *locks.lock_keys(queue.connection)]
    queue.connection.delete(*keys)


def _wipe_host() -> None:
    from tenants.hostspecs import driver

    driver().remove_orphans(set(), set())


def _stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL — by pid. SIGCONT first: a paused (SIGSTOPped) agent cannot act on SIGTERM."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@dataclass
class Stack:
    """A running daphne + agent pair; ``url`` is daphne's base URL."""

    url: str = ""
    daphne: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    logs: dict[str, Path] = field(default_factory=dict)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return self.logs[name].read_text(errors="replace")[-chars:]
        except (KeyError, OSError):
            return "(no log)"

    def agent_alive(self) -> bool:
        return self.agent is not None and self.agent.poll() is None

    @contextlib.contextmanager
    def agent_paused(self) -> Iterator[None]:
        """Freeze the agent (SIGSTOP, by pid) so a page can be seen BEFORE the agent acts; SIGCONT on exit.

        Jobs enqueued meanwhile wait in Redis (the agent's blocking pop is answered when it runs again).
        """
        assert self.agent_alive(), self.log_tail("agent")
        os.kill(self.agent.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.agent.pid, signal.SIGCONT)


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _wait(predicate, what: str, stack: Stack, proc_name: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    proc = getattr(stack, proc_name)
    while not predicate():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{stack.log_tail(proc_name)}")
        time.sleep(0.1)


def _http_ok(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()  # noqa: S310 (loopback)
        return True
    except OSError:
        return False


def _agent_registered(pid: int) -> bool:
    """The agent's RQ worker is listening (its start-up reconcile has finished)."""
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    return any(w.pid == pid for w in Worker.all(queue=queue))


@pytest.fixture
def stack(transactional_db, monkeypatch) -> Iterator[Stack]:
    """daphne + ``manage.py agent`` on the test database; both started at once, both stopped by pid."""
    require_root()
    from django.core.management import call_command
    from django.db import connection

    # Playwright's sync API keeps an event loop on the test thread; the test's own ORM reads there are plain
    # synchronous code, so Django's async-safety guard would be a false alarm (the subprocesses don't inherit it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    call_command("collectstatic", "--noinput", verbosity=0)  # DEBUG is off in daphne: whitenoise serves these
    db_path = Path(connection.settings_dict["NAME"]).resolve()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_path}", DEBUG="0", PYTHONUNBUFFERED="1", LOG_LEVEL="INFO")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    for name in ("REDIS_URL", "NETDASH_PREFIX", "NETDASH_STATE_DIR", "NETDASH_VAR_DIR"):
        assert env.get(name), f"{name} is not set: run through scripts/test.sh"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    stack = Stack(url=f"http://127.0.0.1:{port}",
                  logs={"daphne": ARTIFACTS / "e2e-daphne.log", "agent": ARTIFACTS / "e2e-agent.log"})
    _clear_queue()
    _wipe_host()
    try:
        stack.daphne = _spawn([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                               "netdash.asgi:application"], env, stack.logs["daphne"])
        stack.agent = _spawn([sys.executable, "manage.py", "agent"], env, stack.logs["agent"])
        _wait(lambda: _http_ok(stack.url + "/static/live/portal.js"), "daphne", stack, "daphne")
        _wait(lambda: _agent_registered(stack.agent.pid), "the agent", stack, "agent")
        yield stack
    finally:
        _stop(stack.agent)
        _stop(stack.daphne)
        with contextlib.suppress(Exception):
            _clear_queue()
        _wipe_host()


@pytest.fixture
def chromium() -> Iterator[object]:
    """Debian's Chromium (never a downloaded browser), headless. Request it after ``stack``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()
