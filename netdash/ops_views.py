"""Endpoints for operators' machines, not people: ``/healthz``, ``/readyz`` (load balancers, systemd) and
``/metrics`` (Prometheus). None of them shows tenant data.

Who may scrape ``/metrics``: with ``NETDASH_METRICS_TOKEN`` set, only a request carrying
``Authorization: Bearer <token>``; without it, only a request from loopback that no proxy forwarded. Why the
forwarding headers count: behind nginx on the same host every tenant's request arrives from 127.0.0.1, so
"loopback" alone would open the figures to everyone; with daphne's ``--proxy-headers`` the address is the
client's anyway. A scrape from another host therefore needs the token.
"""

from __future__ import annotations

import ipaddress
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from tenants import health, metrics

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests; asks no dependency (a database outage must not restart us)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database, Redis and at least one agent answer; 503 naming what failed otherwise."""
    checks = health.readiness()
    failed = [c.name for c in checks if not c.ok]
    body = {"ready": not failed, "failed": failed,
            "checks": {c.name: {"ok": c.ok, **({"reason": c.reason} if c.reason else {})} for c in checks}}
    return JsonResponse(body, status=503 if failed else 200)


def _from_loopback_unforwarded(request: HttpRequest) -> bool:
    if any(request.META.get(h) for h in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, for the scraper described in the module docstring only."""
    token = settings.NETDASH_METRICS_TOKEN
    if token:
        if not secrets.compare_digest(_bearer(request).encode(), token.encode()):
            response = HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _from_loopback_unforwarded(request):
        return HttpResponse("metrics are served to loopback only (or set NETDASH_METRICS_TOKEN)\n", status=403,
                            content_type="text/plain")
    return HttpResponse(metrics.web_metrics(), content_type=CONTENT_TYPE_LATEST)
