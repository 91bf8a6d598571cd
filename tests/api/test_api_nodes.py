"""Nodes are read-only in the API and admin, and only superusers see them (tenants see a node's name only)."""

import pytest

from tenants import nodes

pytestmark = pytest.mark.django_db


@pytest.fixture
def node():
    return nodes.node_register(name="n1", vtep_address="10.250.0.1", roles="dhcp")


def test_superusers_read_nodes_others_see_none(node, user_factory, tenant_factory, member_factory, bearer_client):
    root = bearer_client(user_factory(is_superuser=True))
    listed = root.get("/api/v1/nodes/").json()["results"]
    assert [(n["name"], n["vtep_address"], n["dhcp"], n["compute"], n["state"]) for n in listed] == [
        ("n1", "10.250.0.1", True, False, "up")]
    assert root.get(f"/api/v1/nodes/{node.pk}/").json()["name"] == "n1"
    assert root.post("/api/v1/nodes/", {"name": "n2"}).status_code == 405
    member = bearer_client(member_factory(tenant_factory(), role="admin"))
    assert member.get("/api/v1/nodes/").json()["results"] == []
    assert member.get(f"/api/v1/nodes/{node.pk}/").status_code == 404


def test_admin_shows_nodes_to_superusers_only(node, client, user_factory):
    staff = user_factory(is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/tenants/node/").status_code == 403
    client.force_login(user_factory(is_superuser=True))
    page = client.get("/admin/tenants/node/")
    assert page.status_code == 200 and b"10.250.0.1" in page.content
    assert client.get("/admin/tenants/node/add/").status_code == 403
    assert client.get(f"/admin/tenants/node/{node.pk}/delete/").status_code == 403
