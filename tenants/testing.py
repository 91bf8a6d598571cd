"""Run the agent's work synchronously, for tests, benchmarks and fault drills.

The real agent runs a SimpleWorker plus a lease-watcher loop; these helpers do the same work in the calling
thread so a test can step through it deterministically — with the same Redis queue and the same jobs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import django_rq
from django.conf import settings
from rq import SimpleWorker

from . import jobs, locks
from .models import Network


def run_jobs() -> int:
    """Run every queued agent job in this process (a burst SimpleWorker on the node's queue, real Redis)."""
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    worker = SimpleWorker([queue], connection=queue.connection)
    worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
    failed = queue.failed_job_registry
    if failed.count:
        ids = failed.get_job_ids()
        job = queue.fetch_job(ids[0])
        for job_id in ids:
            failed.remove(job_id, delete_job=True)
        result = job.latest_result() if job else None
        detail = result.exc_string if result is not None else ids[0]
        raise AssertionError(f"{len(ids)} job(s) failed; first: {detail}")
    return worker.successful_job_count


def settle(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Run jobs and sync leases (what the agent's loops do) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        run_jobs()
        for network in Network.objects.all():
            jobs.sync_leases(network)
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def reset_agent_queue() -> None:
    """Forget every job, registry entry and network lock of this node's agent queue.

    A test that killed an agent mid-job leaves ids in the queue's intermediate list and started registry; the
    next worker's maintenance would fail them ("stuck in intermediate queue") inside an unrelated test.
    """
    queue = django_rq.get_queue(settings.NETDASH_AGENT_QUEUE)
    queue.empty()
    for job_id in queue.failed_job_registry.get_job_ids():
        queue.failed_job_registry.remove(job_id, delete_job=True)
    keys = [queue.intermediate_queue_key, queue.started_job_registry.key,
            *locks.lock_keys(queue.connection)]
    queue.connection.delete(*keys)


def require_root() -> None:
    """Host tests need root (network namespaces). Not being root fails the test with the fix, never skips it:
    a skipped host test would let `make test` pass without the kernel ever being touched (CI runs as root)."""
    import pytest

    if os.geteuid() != 0:
        pytest.fail("host tests need root (network namespaces, dnsmasq, udhcpc): run `make test` as root, as CI does",
                    pytrace=False)


@contextlib.contextmanager
def serve_daphne(db_name: str, log: Path, *, probe: str = "/accounts/login/", wrapper: Sequence[str] = (),
                 **env_overrides: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run the real ASGI server (daphne) on a free loopback port against the test database ``db_name``.

    Browser and privilege tests need the web as its own process; ``wrapper`` prefixes the command (e.g. setpriv to
    drop every capability). Yields ``(base_url, process)`` once ``probe`` answers; stops it by pid afterwards.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_name}", DEBUG="0", **env_overrides)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [*wrapper, sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "netdash.asgi:application"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=Path(settings.BASE_DIR), env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + probe, timeout=1).read()  # noqa: S310 (loopback only)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()



def run_concurrently(n: int, fn: Callable[[int], object]) -> list[tuple[str, object]]:
    """Run ``fn(i)`` in ``n`` threads released together, each closing its own database connection; return
    ``[("ok", value) | ("error", exc)]`` in order. For race tests: a barrier makes the requests really overlap."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(n)
    results: list[tuple[str, object]] = [("error", RuntimeError("not run"))] * n

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - the caller judges every outcome
            results[i] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


def split(results: list[tuple[str, object]]) -> tuple[list[object], list[object]]:
    """``run_concurrently``'s results as (values, exceptions)."""
    return [v for kind, v in results if kind == "ok"], [v for kind, v in results if kind == "error"]


def launch_chromium(playwright):
    """Debian's Chromium (never a downloaded browser), headless, for the browser tests and the benchmark."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
