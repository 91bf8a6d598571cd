"""``manage.py bench_live``: how fast the live view is, measured end to end. Prints figures; asserts nothing.

1. Event → websocket latency: N events published through ``tenants.events.send_now`` and received by a real
   websocket client (autobahn) connected to a real daphne; p50/p95/max of (received − published).
2. Topology render in Chromium for a tenant with 200 networks / 1,000 instances (rows in a throwaway DB):
   page load → first drawing, the snapshot's size, the reconcile time collapsed and expanded, and one delta.

Why a throwaway database and channel prefix: the figures need thousands of rows and events, and must not leak
into a developer's data or onto anyone's open live page. The command re-runs itself in a child process whose
settings point at a temporary SQLite file, so nothing here touches the configured database.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tenants.testing import serve_daphne


async def _ws_connect(port: int, path: str, headers: dict[str, str]):
    """A minimal RFC 6455 client (autobahn cannot be used here: daphne already bound txaio to Twisted)."""
    import base64

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        raise CommandError(f"websocket refused: {response.splitlines()[0]!r}")
    return reader, writer


async def _ws_recv(reader: asyncio.StreamReader) -> tuple[float, bytes]:
    """The next text message and the time its last byte arrived (server frames are unmasked)."""
    payload = b""
    while True:
        b1, b2 = await reader.readexactly(2)
        size = b2 & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        data = await reader.readexactly(size)
        opcode = b1 & 0x0F
        if opcode == 8:
            raise CommandError("websocket closed by the server")
        if opcode in (9, 10):  # ping/pong: the run is far shorter than daphne's ping interval
            continue
        payload += data
        if b1 & 0x80:
            return time.time(), payload


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Measure live-view latency (event → websocket client) and topology render time (200 nets / 1,000 VMs)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--events", type=int, default=200, help="events for the latency run (default 200)")
        parser.add_argument("--networks", type=int, default=200)
        parser.add_argument("--instances", type=int, default=1000)
        parser.add_argument("--skip-render", action="store_true", help="latency only (no Chromium)")
        parser.add_argument("--inner", action="store_true", help="internal: run inside the throwaway environment")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["inner"]:
            self._spawn_inner(options)
            return
        self._run(options)

    # --- outer: set up the throwaway environment ---------------------------------------------------------
    def _spawn_inner(self, options: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory(prefix="netdash-bench-live-") as tmp:
            env = dict(
                os.environ,
                DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3",
                NETDASH_VAR_DIR=tmp,
                NETDASH_CHANNEL_PREFIX=f"bench-{secrets.token_hex(4)}",
                DEBUG="0",
                DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "netdash.settings"),
            )
            argv = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "bench_live", "--inner",
                    "--events", str(options["events"]), "--networks", str(options["networks"]),
                    "--instances", str(options["instances"])]
            if options["skip_render"]:
                argv.append("--skip-render")
            result = subprocess.run(argv, env=env, cwd=settings.BASE_DIR, check=False)
            if result.returncode:
                raise CommandError(f"bench_live failed (exit {result.returncode})")

    # --- inner: measure -----------------------------------------------------------------------------------
    def _run(self, options: dict[str, Any]) -> None:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
        except RedisError as exc:
            raise CommandError(f"Redis at {settings.REDIS_URL} is not answering ({exc}); start it first "
                               "(scripts/redis.sh start PORT DIR, then REDIS_URL=redis://127.0.0.1:PORT/0)") from None
        t0 = time.monotonic()
        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        tenant, session_key = self._seed(options["networks"], options["instances"])
        self.stdout.write(f"setup: throwaway DB with {options['networks']} networks / {options['instances']} "
                          f"instances in {time.monotonic() - t0:.1f} s")
        log = Path(settings.VAR_DIR) / "daphne.log"
        db_name = settings.DATABASES["default"]["NAME"]
        with serve_daphne(db_name, log, probe="/static/live/live.js") as (base, _daphne):
            port = int(base.rsplit(":", 1)[1])
            asyncio.run(self._latency(port, tenant.pk, session_key, options["events"]))
            if not options["skip_render"]:
                self._render(base, tenant.pk, session_key)

    def _seed(self, n_networks: int, n_instances: int):
        """Rows straight into the throwaway DB (bulk, no jobs): the bench measures the view, not IPAM."""
        from bench.topology_rows import seed, session_key

        tenant, user = seed(slug="bench", n_networks=n_networks, n_instances=n_instances)
        return tenant, session_key(user)

    async def _latency(self, port: int, tenant_id: int, session_key: str, n_events: int) -> None:
        from tenants import events

        loop = asyncio.get_running_loop()
        t_connect = time.perf_counter()
        reader, writer = await _ws_connect(port, f"/ws/live/tenants/{tenant_id}/", {
            "Cookie": f"{settings.SESSION_COOKIE_NAME}={session_key}", "Origin": f"http://127.0.0.1:{port}"})
        received, payload = await asyncio.wait_for(_ws_recv(reader), 30)
        snapshot = json.loads(payload)
        size = len(payload)
        for _ in range(1, snapshot.get("parts", 1)):  # a big snapshot comes in parts (live/protocol.py)
            received, payload = await asyncio.wait_for(_ws_recv(reader), 30)
            size += len(payload)
            for key, rows in json.loads(payload).items():
                if isinstance(rows, list):
                    snapshot[key] = snapshot.get(key, []) + rows
        snap_ms = (time.perf_counter() - t_connect) * 1000
        self.stdout.write(f"snapshot: {len(snapshot['networks'])} networks / {len(snapshot['instances'])} instances / "
                          f"{len(snapshot['leases'])} leases, {size / 1024:.0f} KiB in {snapshot.get('parts', 1)} "
                          f"frame(s), connect → snapshot received {snap_ms:.0f} ms")
        data = {"kind": "network", "id": 1, "tenant": tenant_id, "name": "net-000", "kernel_id": "00000000",
                "node": "bench", "status": "active", "status_reason": ""}
        latencies: list[float] = []
        seqs: list[int] = []
        for _ in range(n_events):
            await loop.run_in_executor(None, events.send_now, tenant_id, "network.updated", data)
            received, payload = await asyncio.wait_for(_ws_recv(reader), 10)
            message = json.loads(payload)
            latencies.append((received - message["ts"]) * 1000)
            seqs.append(message["seq"])
        # A burst: everything published back to back, then collected.
        burst_start = time.time()
        for _ in range(n_events):
            await loop.run_in_executor(None, events.send_now, tenant_id, "network.updated", data)
        burst = []
        for _ in range(n_events):
            received, payload = await asyncio.wait_for(_ws_recv(reader), 10)
            burst.append((received - json.loads(payload)["ts"]) * 1000)
        burst_s = time.time() - burst_start
        writer.close()
        gaps = sum(1 for a, b in zip(seqs, seqs[1:], strict=False) if b != a + 1)
        self.stdout.write(
            f"latency, one at a time (send_now → websocket client, n={n_events}): p50 {_pct(latencies, .5):.2f} ms, "
            f"p95 {_pct(latencies, .95):.2f} ms, max {max(latencies):.2f} ms, "
            f"mean {statistics.mean(latencies):.2f} ms; sequence gaps {gaps}")
        self.stdout.write(
            f"latency, burst of {n_events}: p50 {_pct(burst, .5):.2f} ms, p95 {_pct(burst, .95):.2f} ms, "
            f"max {max(burst):.2f} ms; {n_events / burst_s:.0f} events/s end to end")

    def _render(self, base: str, tenant_id: int, session_key: str) -> None:
        from playwright.sync_api import sync_playwright

        artifacts = Path(os.environ.get("ARTIFACTS_DIR", Path(settings.BASE_DIR) / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": base}])
            page = context.new_page()
            t0 = time.perf_counter()
            page.goto(f"{base}/live/tenants/{tenant_id}/")
            page.wait_for_function("() => document.getElementById('live-cy').dataset.rendered >= 1", timeout=60_000)
            load_ms = (time.perf_counter() - t0) * 1000
            collapsed = page.evaluate("() => window.netdashTopology.rendered.lastMs")
            nodes_c = page.evaluate("() => window.netdashTopology.cy.nodes().length")
            page.screenshot(path=str(artifacts / "live-bench-collapsed.png"))
            page.click("[data-action=expand-all]")
            page.wait_for_function("() => window.netdashTopology.collapsed.size === 0")
            expanded = page.evaluate("() => window.netdashTopology.rendered.lastMs")
            nodes_e = page.evaluate("() => window.netdashTopology.cy.nodes().length")
            page.evaluate("() => { window.netdashTopology.cy.fit(undefined, 20); }")
            page.screenshot(path=str(artifacts / "live-bench-expanded.png"))
            # One delta against the full graph: reconcile cost per animation frame.
            before = page.evaluate("() => window.netdashTopology.rendered.count")
            from concurrent.futures import ThreadPoolExecutor

            from tenants import events

            # (A thread: Playwright's sync API holds an event loop here, and send_now uses async_to_sync.)
            with ThreadPoolExecutor(1) as pool:
                pool.submit(events.send_now, tenant_id, "network.updated", {
                    "kind": "network", "id": 1, "tenant": tenant_id, "name": "net-000", "kernel_id": "00000000",
                    "node": "bench", "status": "error", "status_reason": "bench"}).result()
            page.wait_for_function(f"() => window.netdashTopology.rendered.count > {before}", timeout=10_000)
            delta = page.evaluate("() => window.netdashTopology.rendered.lastMs")
            # Synthetic: the same snapshot drawn again from scratch with every network expanded.
            fresh = page.evaluate("""() => { const t = window.netdashTopology; const cy = t.cy;
                cy.elements().remove(); t.collapsed.clear();
                const snap = { type: 'snapshot', seq: t.socket.lastSeq, tenants: [...t.store.tenants.values()],
                  networks: [...t.store.networks.values()], subnets: [...t.store.subnets.values()],
                  instances: [...t.store.instances.values()], leases: [...t.store.leases.values()] };
                return t.renderSnapshot(snap); }""")
            browser.close()
        self.stdout.write(f"render (Chromium, headless, software): page load → first drawing {load_ms:.0f} ms "
                          f"(first view: {nodes_c} nodes, as the page chose, reconcile {collapsed:.0f} ms)")
        self.stdout.write(f"render: expand all → {nodes_e} nodes in {expanded:.0f} ms; full redraw expanded "
                          f"{fresh:.0f} ms; one delta on the expanded graph {delta:.1f} ms")
        self.stdout.write(f"screenshots: {artifacts}/live-bench-collapsed.png, live-bench-expanded.png")
