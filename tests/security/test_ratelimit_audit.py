"""Rate limits (sign-in, API writes), the last-admin rule, and who may read a tenant's audit log."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from api import services as token_services
from api.throttling import ApiWriteThrottle
from tenants import services
from tenants.choices import Role
from tenants.models import AuditEntry, Membership

pytestmark = pytest.mark.django_db


def unique(prefix: str) -> str:
    """Counters live in Redis for a minute: a fresh name keeps reruns and parallel runs apart."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_rates_are_drf_rates_and_off_means_no_limit(settings):
    settings.NETDASH_API_WRITE_RATE = "120/min"
    assert (ApiWriteThrottle().num_requests, ApiWriteThrottle().duration) == (120, 60)
    for off in ("", "0", "off", "None"):
        settings.NETDASH_API_WRITE_RATE = off
        assert ApiWriteThrottle().rate is None
    settings.NETDASH_API_WRITE_RATE = "ten per minute"
    with pytest.raises(ImproperlyConfigured, match="NETDASH_API_WRITE_RATE='ten per minute' is not like '10/m'"):
        ApiWriteThrottle()


@pytest.fixture
def stopped_redis(settings):
    """The rate-limit cache pointed at a Redis that is not running (a loopback port nobody listens on)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    return port


# --- sign-in ---------------------------------------------------------------------------------------------

def test_sign_in_attempts_are_limited_per_ip_and_user_name(settings, user_factory):
    settings.NETDASH_LOGIN_RATE = "3/m"
    name = unique("victim")
    user_factory(username=name, password="right-horse-battery-1")
    client = Client()
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": name, "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": name, "password": "right-horse-battery-1"})
    assert response.status_code == 429, "the 4th attempt in a minute must be refused, even with the password"
    assert int(response["Retry-After"]) >= 1
    assert b"Too many sign-in attempts" in response.content and "_auth_user_id" not in client.session
    # Another account from the same address is not locked out by it, and neither is the victim elsewhere.
    other = unique("colleague")
    user_factory(username=other, password="right-horse-battery-2")
    assert client.post("/accounts/login/", {"username": other, "password": "right-horse-battery-2"}).status_code == 302
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert elsewhere.post("/accounts/login/", {"username": name, "password": "right-horse-battery-1"}
                          ).status_code == 302
    # A made-up X-Forwarded-For per attempt does not make a new client of the same address.
    spoofed = Client().post("/accounts/login/", {"username": name, "password": "wrong"},
                            HTTP_X_FORWARDED_FOR="10.1.2.3")
    assert spoofed.status_code == 429


def test_counters_live_in_the_shared_redis(settings, user_factory):
    """Several web processes must share one count: the window is in Redis, not in this process's memory."""
    settings.NETDASH_LOGIN_RATE = "5/m"
    name = unique("shared")
    user_factory(username=name)
    connection = redis.Redis.from_url(settings.REDIS_URL)
    before = set(connection.scan_iter("*throttle_login_*"))
    Client().post("/accounts/login/", {"username": name, "password": "wrong"})
    assert len(set(connection.scan_iter("*throttle_login_*")) - before) == 1


def test_sign_in_fails_open_with_a_log_line_when_redis_is_down(settings, user_factory, stopped_redis, caplog):
    """Availability over lockout: documented in tenants/ratelimit.py and the README."""
    settings.NETDASH_LOGIN_RATE = "1/m"
    name = unique("user")
    user_factory(username=name, password="right-horse-battery-3")
    client = Client()
    with caplog.at_level(logging.WARNING, logger="tenants.ratelimit"):
        client.post("/accounts/login/", {"username": name, "password": "wrong"})
        response = client.post("/accounts/login/", {"username": name, "password": "right-horse-battery-3"})
    assert response.status_code == 302
    assert "rate limit login not enforced: Redis is unavailable" in caplog.text


# --- API writes ------------------------------------------------------------------------------------------

def test_api_writes_are_limited_per_user_reads_are_not(settings, tenant_factory, member_factory):
    settings.NETDASH_API_WRITE_RATE = "2/m"
    tenant = tenant_factory()
    clients = []
    for _ in range(2):
        user = member_factory(tenant, role=Role.ADMIN, username=unique("api"))
        _, secret = token_services.api_token_create(user=user, name="ci")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        clients.append(client)
    first, second = clients
    assert first.post("/api/v1/networks/", {"name": "n1"}, format="json").status_code == 201
    assert first.post("/api/v1/networks/", {"name": "\n"}, format="json").status_code == 400  # counts as well
    response = first.post("/api/v1/networks/", {"name": "n3"}, format="json")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert first.patch("/api/v1/networks/1/", {"name": "x"}, format="json").status_code == 429
    assert first.get("/api/v1/networks/").status_code == 200
    assert second.post("/api/v1/networks/", {"name": "n4"}, format="json").status_code == 201


def test_api_writes_fail_open_with_a_log_line_when_redis_is_down(settings, tenant_factory, member_factory,
                                                                 stopped_redis, caplog):
    settings.NETDASH_API_WRITE_RATE = "1/m"
    user = member_factory(tenant_factory(), role=Role.ADMIN, username=unique("api"))
    _, secret = token_services.api_token_create(user=user, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    with caplog.at_level(logging.WARNING, logger="tenants.ratelimit"):
        for name in ("n1", "n2"):
            assert client.post("/api/v1/networks/", {"name": name}, format="json").status_code == 201
    assert "rate limit api-write not enforced: Redis is unavailable" in caplog.text


# --- the last admin ---------------------------------------------------------------------------------------

def test_the_last_admin_can_be_neither_removed_nor_demoted(tenant_factory, member_factory):
    tenant = tenant_factory()
    admin = member_factory(tenant, role=Role.ADMIN)
    membership = Membership.objects.get(user=admin)
    with pytest.raises(ValidationError, match="last admin"):
        services.membership_remove(membership=membership)
    with pytest.raises(ValidationError, match="last admin") as caught:
        services.membership_set(tenant=tenant, user=admin, role=Role.MEMBER)
    assert caught.value.message_dict["role"]
    # With a second admin both are allowed.
    member_factory(tenant, role=Role.ADMIN)
    services.membership_set(tenant=tenant, user=admin, role=Role.MEMBER)
    services.membership_remove(membership=Membership.objects.get(user=admin))
    assert not Membership.objects.filter(user=admin).exists()


def test_the_portal_says_why_the_last_admin_stays(tenant_factory, member_factory):
    tenant = tenant_factory()
    admin = member_factory(tenant, role=Role.ADMIN)
    membership = Membership.objects.get(user=admin)
    client = Client()
    client.force_login(admin)
    response = client.post(reverse("portal:member-remove", args=[tenant.slug, membership.pk]), follow=True)
    assert response.status_code == 200 and b"last admin" in response.content
    response = client.post(reverse("portal:member-role", args=[tenant.slug, membership.pk]), {"role": "member"},
                           follow=True)
    assert b"last admin" in response.content
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN


# --- the audit log -----------------------------------------------------------------------------------------

def test_audit_log_is_visible_to_the_tenants_admins_only(isolation_world, member_factory):
    w = isolation_world
    api_user = member_factory(w.a, role=Role.MEMBER, username="alpha-member")
    _, secret = token_services.api_token_create(user=api_user, name="ci")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.post("/api/v1/networks/", {"name": "audited-net"}, format="json").status_code == 201
    entry = AuditEntry.objects.get(tenant=w.a, action="network.create", detail="audited-net")
    assert entry.actor == api_user  # who changed what

    url = reverse("portal:audit-log", args=[w.a.slug])
    admin = Client()
    admin.force_login(w.alpha)
    page = admin.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "audited-net" in body and "alpha-member" in body and "network.create" in body
    assert not any(marker in body for marker in w.markers), "tenant B's audit entries leaked"
    member = Client()
    member.force_login(api_user)
    assert member.get(url).status_code == 404  # a plain member of the tenant
    other = Client()
    other.force_login(w.beta)
    assert other.get(url).status_code == 404  # another tenant's admin
    assert Client().get(url).status_code == 302  # anonymous → sign in
    own_b = other.get(reverse("portal:audit-log", args=[w.b.slug]))
    assert own_b.status_code == 200 and "audited-net" not in own_b.content.decode()
