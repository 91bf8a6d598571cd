"""Nodes in the API and admin: only superusers see them (tenants see a node's name only); agents register them,
superusers drain and undrain them (and see each network's DHCP servers in the admin)."""

import pytest

from tenants import nodes, services
from tenants.choices import NodeState
from tenants.models import DhcpServer, Node

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


@pytest.fixture
def spread(tenant_factory):
    """Three VTEP nodes and a network whose two DHCP servers are on n1 (first) and n2."""
    for i in (1, 2, 3):
        nodes.node_register(name=f"n{i}", vtep_address=f"10.250.0.{i}")
    return services.network_create(tenant=tenant_factory(), name="web", subnet={"cidr": "10.7.0.0/24"})


def test_superusers_drain_and_undrain_a_node_others_get_404(spread, user_factory, tenant_factory, member_factory,
                                                           bearer_client):
    n1 = Node.objects.get(name="n1")
    member = bearer_client(member_factory(spread.tenant, role="admin"))
    assert member.post(f"/api/v1/nodes/{n1.pk}/drain/").status_code == 404
    assert Node.objects.get(name="n1").state == NodeState.UP
    root = bearer_client(user_factory(is_superuser=True))
    drained = root.post(f"/api/v1/nodes/{n1.pk}/drain/")
    assert drained.status_code == 200, drained.content
    body = drained.json()
    assert (body["name"], body["state"], body["agent_state"], body["dhcp_duties_moved"]) == (
        "n1", "drained", "draining", 1)
    assert list(DhcpServer.objects.filter(network=spread).values_list("node", flat=True)) == ["n3", "n2"]
    assert member.post(f"/api/v1/nodes/{n1.pk}/undrain/").status_code == 404
    undrained = root.post(f"/api/v1/nodes/{n1.pk}/undrain/")
    assert undrained.status_code == 200 and undrained.json()["agent_state"] == "live"
    again = root.post(f"/api/v1/nodes/{n1.pk}/undrain/")
    assert again.status_code == 400 and "not drained" in again.json()["state"][0]


def test_the_schema_documents_drain_and_undrain(client):
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/api/v1/nodes/{node_id}/drain/"]) == {"post"}
    assert set(paths["/api/v1/nodes/{node_id}/undrain/"]) == {"post"}
    drained = paths["/api/v1/nodes/{node_id}/drain/"]["post"]["responses"]["200"]["content"]["application/json"]
    schema = document["components"]["schemas"][drained["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"agent_state", "dhcp_duties_moved"} <= set(schema["properties"])


def test_admin_lists_dhcp_servers_and_drains_nodes_for_superusers_only(spread, client, user_factory):
    client.force_login(user_factory(is_staff=True))
    assert client.get("/admin/tenants/dhcpserver/").status_code == 403
    client.force_login(user_factory(is_superuser=True))
    page = client.get("/admin/tenants/dhcpserver/").content.decode()
    assert "web" in page and "n1" in page and "n2" in page
    nodes_page = client.get("/admin/tenants/node/").content.decode()
    assert "Live" in nodes_page and "DHCP duties" in nodes_page
    n1 = Node.objects.get(name="n1")
    client.post("/admin/tenants/node/", {"action": "drain", "_selected_action": [n1.pk]})
    assert Node.objects.get(name="n1").state == NodeState.DRAINED
    assert "n1" not in DhcpServer.objects.filter(network=spread).values_list("node", flat=True)
