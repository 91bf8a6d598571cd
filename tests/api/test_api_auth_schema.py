"""Bearer tokens (create, use, revoke), session auth with CSRF, the OpenAPI document and the docs page."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from api import services as token_services
from api.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(member_factory, tenant_factory):
    return member_factory(tenant_factory(name="Acme", slug="acme"), username="acme-user")


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_token_authenticates_until_revoked(user):
    token, secret = token_services.api_token_create(user=user, name="ci")
    assert token.token_hash == token_services.hash_token(secret) and token.prefix == secret[:11]
    assert not ApiToken.objects.filter(token_hash=secret).exists()  # the secret itself is never stored
    response = bearer(secret).get("/api/v1/tenants/")
    assert response.status_code == 200 and response.json()["results"][0]["slug"] == "acme"
    token.refresh_from_db()
    assert token.last_used_at is not None
    token_services.api_token_revoke(token=token, actor=user)
    response = bearer(secret).get("/api/v1/tenants/")
    assert response.status_code == 401 and response.json() == {"detail": "Invalid or revoked token."}


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer nd_wrong"])
def test_bad_bearer_headers_are_401(user, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/networks/").status_code == 401


def test_inactive_users_token_stops_working(user):
    _, secret = token_services.api_token_create(user=user, name="ci")
    user.is_active = False
    user.save()
    assert bearer(secret).get("/api/v1/networks/").status_code == 401


def test_token_name_is_validated(user):
    with pytest.raises(Exception, match="Enter a name"):
        token_services.api_token_create(user=user, name="  ")


def test_session_auth_works_and_needs_csrf_for_writes(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/networks/").status_code == 200
    response = client.post("/api/v1/networks/", data=json.dumps({"name": "x"}), content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    page = client.get("/tokens/")  # any page sets the CSRF cookie
    token = page.cookies["csrftoken"].value
    response = client.post("/api/v1/networks/", data=json.dumps({"name": "x"}), content_type="application/json",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_create_api_token_command_prints_a_working_token(user, capsys):
    call_command("create_api_token", "acme-user", "--name", "deploy")
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("nd_")
    assert bearer(secret).get("/api/v1/networks/").status_code == 200
    assert ApiToken.objects.get(user=user).name == "deploy"


def test_create_api_token_command_rejects_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No active user 'ghost'"):
        call_command("create_api_token", "ghost")


def test_openapi_document_is_valid_and_complete(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    paths = document["paths"]
    for route in ("/api/v1/tenants/", "/api/v1/networks/", "/api/v1/networks/{network_id}/", "/api/v1/subnets/",
                  "/api/v1/subnets/{subnet_id}/", "/api/v1/instances/", "/api/v1/instances/{instance_id}/",
                  "/api/v1/leases/", "/api/v1/leases/{lease_id}/", "/api/v1/nodes/", "/api/v1/nodes/{node_id}/"):
        assert route in paths, route
    assert set(paths["/api/v1/networks/"]) >= {"get", "post"}
    assert set(paths["/api/v1/networks/{network_id}/"]) >= {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/leases/{lease_id}/"]) == {"get"}
    assert set(paths["/api/v1/nodes/{node_id}/"]) == {"get"}
    filters = {p["name"] for p in paths["/api/v1/instances/"]["get"]["parameters"]}
    assert filters >= {"network", "subnet", "status", "tenant", "limit", "offset"}
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearerAuth"][
            "description"]}


def test_docs_page_lists_endpoints_without_external_assets(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/networks/{network_id}/" in html and "NetworkCreate" in html
    assert "cdn" not in html.lower() and "<script" not in html


def test_browsable_api_root(user):
    client = Client()
    client.force_login(user)
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"networks" in response.content
