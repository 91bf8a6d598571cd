"""Fixtures for fault drills and load tests against the REAL stack.

Real Redis, real agent processes (``manage.py agent`` as subprocesses pointed at the test database), real
kernel, dnsmasq and udhcpc. Each test prints what it injected and what it saw (terminal reporter, so the
figures show without ``-s``) and appends them as JSON lines to ``$ARTIFACTS_DIR/faults.jsonl``.

Teardown order matters and is encoded in fixture dependencies: agents die first (by pid), then the queue and
locks are emptied, then the host is cleaned, then pytest-django flushes the database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import django_rq
import pytest
from django.conf import settings
from faults_helpers import agent_database_url, free_port, our_processes, wait_for
from rq import Worker

from tenants import events
from tenants.host import process
from tenants.hostspecs import driver
from tenants.queue import agent_queue as agent_queue_of
from tenants.testing import require_root, reset_agent_queue

BASE_DIR = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", BASE_DIR / "artifacts"))
RECORDS: list[dict] = []
_agent_logs_started = threading.Event()


# --- reporting ----------------------------------------------------------------------------------------

def pytest_terminal_summary(terminalreporter) -> None:
    """Repeat every figure at the end of the run, where CI logs are read."""
    if not RECORDS:
        return
    terminalreporter.section("fault drill and load figures")
    for record in RECORDS:
        figures = {k: v for k, v in record.items() if k not in ("test", "ts")}
        terminalreporter.write_line(f"{record['test']}: {json.dumps(figures, default=str)}")


@pytest.fixture
def report(request, pytestconfig) -> Callable[..., None]:
    """``report(injected=..., seen=..., seconds=...)``: print now (capture-independent) and keep as JSON."""
    terminal = pytestconfig.pluginmanager.getplugin("terminalreporter")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def emit(**figures: object) -> None:
        record = {"test": request.node.name, "ts": round(time.time(), 3), **figures}
        RECORDS.append(record)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with open(ARTIFACTS / "faults.jsonl", "a" if len(RECORDS) > 1 else "w") as f:  # one run per file
            f.write(json.dumps(record, default=str) + "\n")
        line = f"[faults] {request.node.name}: {json.dumps(figures, default=str)}"
        # Capture is fd-level: suspend it, or the line would only show for failing tests.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if terminal is not None:
                terminal.ensure_newline()
                terminal.write_line(line)
            else:
                print(line, file=sys.__stderr__)

    return emit


# --- host ---------------------------------------------------------------------------------------------

def _wipe_host() -> None:
    d = driver()
    d.remove_orphans(set(), set())
    for pids in our_processes().values():  # processes whose namespace was deleted behind our back
        for pid in pids:
            process.kill(pid, signal.SIGKILL)


@pytest.fixture
def host_clean() -> Iterator[object]:
    """Nothing with this run's prefix on the host before and after the test, even when it fails."""
    require_root()
    _wipe_host()
    yield driver()
    _wipe_host()


@pytest.fixture
def agent_queue(host_clean) -> Iterator[object]:
    """An empty agent queue (and no network locks) before and after the test."""
    reset_agent_queue()
    yield django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    try:
        reset_agent_queue()
    except Exception:  # noqa: BLE001 - a test that stopped its Redis must still tear down
        pass


# --- agent processes ----------------------------------------------------------------------------------

class AgentProcess:
    """One ``manage.py agent`` subprocess on the test database; stopped or killed by its pid only."""

    def __init__(self, env: dict[str, str], log_path: Path, node: str = settings.NETDASH_NODE) -> None:
        self.env = {**env, "NETDASH_NODE": node}
        self.log_path = log_path
        self.node = node
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> AgentProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen([sys.executable, "manage.py", "agent"], cwd=BASE_DIR, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def worker_registered(self) -> bool:
        """The agent's RQ worker is listening (its start-up reconcile has finished)."""
        try:
            return any(w.pid == self.pid for w in Worker.all(queue=agent_queue_of(self.node)))
        except Exception:  # noqa: BLE001 - Redis may be down in a drill
            return False

    def wait_ready(self, timeout: float = 60.0) -> float:
        took = wait_for(lambda: self.worker_registered() or not self.alive(), timeout)
        assert self.alive(), f"agent exited early:\n{self.log_tail()}"
        assert took is not None, f"agent not ready after {timeout} s:\n{self.log_tail()}"
        return took

    def kill(self) -> None:
        """SIGKILL: no clean-up code runs (what a crash or OOM kill does)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (warm shutdown); SIGKILL after ``timeout``. Returns the exit status (None if it was killed)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_count(self, text: str) -> int:
        try:
            return self.log_path.read_text(errors="replace").count(text)
        except OSError:
            return 0


@pytest.fixture
def start_agent(transactional_db, agent_queue, tmp_path) -> Iterator[Callable[..., AgentProcess]]:
    """``start_agent(reconcile_seconds=60, redis_url=None, node=NETDASH_NODE, env=None)`` → a running agent
    subprocess on the test database, serving ``node`` (``env``: more environment, e.g. a node's own prefix)."""
    started: list[AgentProcess] = []
    database_url = agent_database_url()

    def start(reconcile_seconds: int = 60, redis_url: str | None = None, wait: bool = True,
              node: str = settings.NETDASH_NODE, env: dict[str, str] | None = None) -> AgentProcess:
        extra, env = env or {}, dict(os.environ)
        env.update({
            "DATABASE_URL": database_url,
            "NETDASH_RECONCILE_SECONDS": str(reconcile_seconds),
            "REDIS_URL": redis_url or settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            **extra,
        })
        agent = AgentProcess(env, tmp_path / f"agent-{len(started)}.log", node)
        started.append(agent.start())
        if wait:
            agent.wait_ready()
        return agent

    yield start
    for agent in started:
        agent.stop(timeout=5)
    # A SIGKILLed agent never unregisters its RQ worker; left listed, it would look alive to anyone listing
    # the queue's workers until its TTL runs out.
    try:
        for agent in started:
            for worker in Worker.all(queue=agent_queue_of(agent.node)):
                if worker.pid == agent.pid:
                    worker.register_death()
    except Exception:  # noqa: BLE001 - a drill may have stopped its Redis
        pass
    logs = [a.log_path for a in started]
    if logs:  # keep the agents' logs for CI
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        mode = "a" if _agent_logs_started.is_set() else "w"  # one run per file
        _agent_logs_started.set()
        with open(ARTIFACTS / "faults-agents.log", mode) as out:
            for p in logs:
                out.write(f"==== {p}\n{p.read_text(errors='replace') if p.exists() else ''}\n")


# --- a private Redis that a test may stop and start ---------------------------------------------------

class PrivateRedis:
    """redis-server on a free loopback port with ``scripts/redis.sh`` (stopped by its pid file)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(["bash", "scripts/redis.sh", "start", str(self.port), str(self.dir)], cwd=BASE_DIR,
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(["bash", "scripts/redis.sh", "stop", str(self.dir)], cwd=BASE_DIR, check=True,
                       capture_output=True)


@pytest.fixture
def private_redis(tmp_path, settings, monkeypatch) -> Iterator[PrivateRedis]:
    """A second Redis for this test only; the process's queues, events and channel layer point at it."""
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    settings.REDIS_URL = redis.url
    settings.RQ_QUEUES = {name: {**conf, "URL": redis.url} for name, conf in settings.RQ_QUEUES.items()}
    layers = {alias: {**conf, "CONFIG": {**conf["CONFIG"], "hosts": [redis.url]}}
              for alias, conf in settings.CHANNEL_LAYERS.items()}
    settings.CHANNEL_LAYERS = layers
    monkeypatch.setattr(events, "_redis", None)
    try:
        yield redis
    finally:
        redis.stop()
        events._redis = None
