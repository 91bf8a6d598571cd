"""The processes the product really runs, started by the bench: ``manage.py agent`` and daphne.

Both inherit the bench environment (prefix, state dir, database, Redis) from the child process; every pid is
recorded in the run directory so the supervisor can kill it even if this process dies first.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rq import Worker

from . import supervisor
from .wsclient import ChannelLayerListener, WebsocketListener

ROOT = supervisor.ROOT


class Stack:
    """Agents (RQ SimpleWorker + lease watcher + monitor each) and one daphne, with their logs in the run dir."""

    def __init__(self, run_dir: Path, *, agents: int = 1) -> None:
        self.run_dir = run_dir
        self.n_agents = agents
        self.agents: list[subprocess.Popen[bytes]] = []
        self.daphne: subprocess.Popen[bytes] | None = None
        self.daphne_port: int | None = None

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.run_dir / log_name, "ab")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                             env=os.environ.copy())
        supervisor.record_pid(self.run_dir, p.pid)
        return p

    def start_agents(self, timeout: float = 60.0) -> float:
        """Start the agents and wait until each RQ worker is registered; return the start-up time in seconds."""
        t0 = time.perf_counter()
        queue = settings.NETDASH_AGENT_QUEUE
        for i in range(len(self.agents), self.n_agents):
            self.agents.append(self._spawn([sys.executable, str(ROOT / "manage.py"), "agent"], f"agent{i}.log"))
        import django_rq

        conn = django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)
        deadline = time.monotonic() + timeout
        while True:
            workers = [w for w in Worker.all(connection=conn) if queue in w.queue_names()]
            if len(workers) >= self.n_agents:
                return time.perf_counter() - t0
            for p in self.agents:
                if p.poll() is not None:
                    raise RuntimeError(f"agent exited with {p.returncode}; see {self.run_dir}/agent*.log")
            if time.monotonic() > deadline:
                raise TimeoutError("agents did not register with RQ")
            time.sleep(0.05)

    def stop_agents(self) -> None:
        for p in self.agents:
            p.terminate()
        for p in self.agents:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.agents = []

    def start_daphne(self, timeout: float = 30.0) -> int:
        self.daphne_port = supervisor.free_port()
        self.daphne = self._spawn([str(Path(sys.executable).with_name("daphne")), "-b", "127.0.0.1", "-p",
                                   str(self.daphne_port), "netdash.asgi:application"], "daphne.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.daphne_port), timeout=0.2).close()
                return self.daphne_port
            except OSError:
                if self.daphne.poll() is not None:
                    raise RuntimeError(f"daphne exited; see {self.run_dir}/daphne.log") from None
                time.sleep(0.05)
        raise TimeoutError("daphne did not listen")

    def listener(self, tenant_id: int) -> WebsocketListener | ChannelLayerListener:
        """A websocket client on the tenant's live view when ``live`` exists, else a channel-layer subscriber."""
        if not apps.is_installed("live") or self.daphne_port is None:
            return ChannelLayerListener(f"tenant.{tenant_id}").start()
        user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True,
                                                                                      "is_staff": True})
        client = Client()
        client.force_login(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        origin = f"http://127.0.0.1:{self.daphne_port}"
        return WebsocketListener("127.0.0.1", self.daphne_port, f"/ws/live/tenants/{tenant_id}/", cookie=cookie,
                                 origin=origin).start()

    def stop(self) -> None:
        self.stop_agents()
        if self.daphne is not None:
            self.daphne.terminate()
            try:
                self.daphne.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daphne.kill()
            self.daphne = None
