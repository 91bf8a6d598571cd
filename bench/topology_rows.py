"""Bench rows for the live topology (issue 16 "Pages"): snapshot build time and Chromium first draw at 500 / 2,000.

Rows only, no host realisation: the figures are about the page, so networks and instances are bulk-created
``active`` straight into the database (``seed``), which takes seconds instead of the minutes realising 500
networks would. Opt-in (``--figures …,topology``) like the IPv6 rows; the browser test and ``bench_live`` seed
their big views with the same ``seed``.

* snapshot: ``live.snapshot.build_snapshot`` for a member of the tenant, the code a websocket runs on connect —
  its query count is fixed (``tests/live/test_snapshot_queries.py``), so what is left is serialising rows.
* first draw: navigation → the first drawing of the page in Chromium against the bench's daphne (the page's own
  ``performance.now()`` when its first reconcile finished, so browser start-up is not counted).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from live.protocol import snapshot_frames
from live.snapshot import build_snapshot, resolve_view
from tenants import services
from tenants.choices import LeaseState, ObjectStatus, Role
from tenants.models import AllocationPool, Instance, Lease, Network, Subnet, Tenant

NETWORKS, INSTANCES = 500, 2000
SNAPSHOT_SAMPLES = 5
DRAW_SAMPLES = 3


def seed(*, slug: str, n_networks: int, n_instances: int, node: str = "bench") -> tuple[Tenant, Any]:
    """A tenant with ``n_networks`` one-subnet networks and ``n_instances`` instances spread over them (every
    other one holding an active lease), all ``active``, and an admin member; returns ``(tenant, user)``.

    Bulk inserts, no services past the tenant: the rows are what IPAM would have written, without its cost.
    """
    user = get_user_model().objects.create_user(username=f"{slug}-admin", password=secrets.token_urlsafe(16))
    tenant = services.tenant_create(name=slug.title(), slug=slug, quota_networks=n_networks,
                                    quota_subnets=n_networks, quota_instances=n_instances)
    services.membership_set(tenant=tenant, user=user, role=Role.ADMIN)
    networks = Network.objects.bulk_create([
        Network(tenant=tenant, name=f"net-{i:03d}", status=ObjectStatus.ACTIVE, node=node) for i in range(n_networks)])
    cidrs = [ipaddress.ip_network(f"10.{i // 250}.{i % 250}.0/24") for i in range(n_networks)]
    subnets = Subnet.objects.bulk_create([
        Subnet(network=n, cidr=str(c), gateway=str(c[1]), dhcp_address=str(c[2]))
        for n, c in zip(networks, cidrs, strict=True)])
    AllocationPool.objects.bulk_create([AllocationPool(subnet=s, start=str(c[10]), end=str(c[250]))
                                        for s, c in zip(subnets, cidrs, strict=True)])
    instances = Instance.objects.bulk_create([
        Instance(network_id=subnets[k % n_networks].network_id, subnet=subnets[k % n_networks],
                 hostname=f"vm-{k:04d}", mac_address=f"fa:16:3e:{k >> 16 & 255:02x}:{k >> 8 & 255:02x}:{k & 255:02x}",
                 ip_address=str(cidrs[k % n_networks][10 + k // n_networks]), status=ObjectStatus.ACTIVE)
        for k in range(n_instances)])
    expires = timezone.now() + timedelta(hours=1)
    Lease.objects.bulk_create([
        Lease(subnet_id=i.subnet_id, instance=i, ip_address=i.ip_address, mac_address=i.mac_address,
              hostname=i.hostname, expires_at=expires, state=LeaseState.ACTIVE) for i in instances[::2]])
    return tenant, user


def session_key(user: Any) -> str:
    """A real database session for ``user``: the cookie a browser (or a raw websocket client) presents."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def snapshot_seconds(tenant: Tenant, user: Any, samples: int = SNAPSHOT_SAMPLES) -> list[float]:
    """``build_snapshot`` for the tenant's view, ``samples`` times."""
    view = resolve_view(user, tenant_id=tenant.pk)
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        build_snapshot(user, view)
        out.append(time.perf_counter() - t0)
    return out


def first_draw_seconds(base_url: str, tenant: Tenant, key: str,
                       samples: int = DRAW_SAMPLES) -> list[tuple[float, float, float]]:
    """Navigation → snapshot received and parsed, the page's layout of it (plan, build, first view: not from
    navigation), navigation → first drawing; of the tenant topology in headless Chromium, ``samples`` pages."""
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            for _ in range(samples):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": base_url}])
                page = context.new_page()
                page.goto(f"{base_url}/live/tenants/{tenant.pk}/")
                page.wait_for_function("() => window.netdashTopology?.rendered.firstDrawMs > 0", timeout=120_000)
                r = page.evaluate("() => window.netdashTopology.rendered")
                out.append((r["snapshotMs"] / 1e3, r["firstLayoutMs"] / 1e3, r["firstDrawMs"] / 1e3))
                context.close()
        finally:
            browser.close()
    return out


def measure(base_url: str, *, n_networks: int = NETWORKS, n_instances: int = INSTANCES) -> dict[str, Any]:
    """Sizes, the snapshot's bytes, and summaries (seconds) of its build, and of navigation → snapshot received
    and → first drawing in Chromium, for one seeded tenant."""
    from .stats import summary

    # On a node no agent serves: the bench's own agent must not start realising (or reconciling) these rows.
    tenant, user = seed(slug=f"topo-{secrets.token_hex(3)}", n_networks=n_networks, n_instances=n_instances,
                        node="rows-only")
    snap = snapshot_seconds(tenant, user)
    frames = snapshot_frames(build_snapshot(user, resolve_view(user, tenant_id=tenant.pk)),
                             settings.NETDASH_LIVE_FRAME_BYTES)
    size = sum(len(f.encode("utf-8")) for f in frames)
    draw = first_draw_seconds(base_url, tenant, session_key(user))
    # Rows only: nothing was realised, so nothing on the host to tear down; the sizes that follow start empty.
    Instance.objects.filter(network__tenant=tenant).delete()
    tenant.networks.all().delete()
    return {"networks": n_networks, "instances": n_instances, "snapshot_bytes": size,
            "snapshot_frames": len(frames),
            "snapshot": summary(snap),
            "snapshot_received": summary([d[0] for d in draw]), "first_layout": summary([d[1] for d in draw]),
            "first_draw": summary([d[2] for d in draw])}


def table(row: dict[str, Any]) -> str:
    """One line per figure: median and p95 in ms."""
    head = (f"topology, {row['networks']} networks / {row['instances']} instances "
            f"({row['snapshot_bytes'] >> 10} KiB in {row.get('snapshot_frames', 1)} frame(s))")
    lines = [f"{head:<52} {'p50':>8} {'p95':>8}"]
    for key, what in (("snapshot", "snapshot build (build_snapshot)"),
                      ("snapshot_received", "Chromium: navigation → snapshot received"),
                      ("first_layout", "Chromium: the page's plan + build + first view"),
                      ("first_draw", "Chromium: navigation → first drawing")):
        s = row[key]
        lines.append(f"{what:<52} {s['median'] * 1e3:>6.0f}ms {s['p95'] * 1e3:>6.0f}ms")
    return "\n".join(lines)
