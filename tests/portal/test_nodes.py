"""The nodes page (issue 17, "a nodes view"), drain and undrain from it, and the DHCP servers and node states the
network and instance pages show (issue 13, "Views"). Superusers only: everyone else gets 404, as for another
tenant's object."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tenants import nodes, services
from tenants.choices import NodeState, ObjectStatus
from tenants.models import DhcpServer, Node
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_nodes():
    return [nodes.node_register(name=f"n{i}", vtep_address=f"10.250.0.{i}") for i in (1, 2, 3)]


@pytest.fixture
def root(client, user_factory):
    client.force_login(user_factory(is_superuser=True))
    return client


@pytest.fixture
def world(three_nodes, tenant_factory, member_factory):
    tenant = tenant_factory(slug="acme")
    network = services.network_create(tenant=tenant, name="web", subnet={"cidr": "10.7.0.0/24"})
    instance = services.instance_create(network=network, hostname="vm1")
    return {"tenant": tenant, "network": network, "instance": instance,
            "member": member_factory(tenant, role="admin")}


def servers(network) -> list[str]:
    return list(DhcpServer.objects.filter(network=network).order_by("rank").values_list("node", flat=True))


def test_only_superusers_see_the_nodes_pages(world, client, user_factory):
    n1 = Node.objects.get(name="n1")
    urls = ["/nodes/", f"/nodes/{n1.pk}/", f"/nodes/{n1.pk}/drain/", f"/nodes/{n1.pk}/undrain/"]
    for user in (world["member"], user_factory(is_staff=True)):
        client.force_login(user)
        for url in urls:
            assert client.get(url).status_code == 404, url
        assert client.post(f"/nodes/{n1.pk}/drain/").status_code == 404
        assert b"/nodes/" not in client.get("/").content  # no nav link either
    assert Node.objects.get(name="n1").state == NodeState.UP
    client.logout()
    assert client.get("/nodes/").status_code == 302


def test_the_nodes_page_shows_state_heartbeat_roles_vtep_counts_and_load(world, root):
    Node.objects.filter(name="n3").update(heartbeat_at=timezone.now() - timedelta(
        seconds=settings.NETDASH_NODE_DEAD_SECONDS + 5))  # silent: down before failure detection says so
    Node.objects.filter(name="n2").update(state=NodeState.DRAINED)
    page = root.get("/nodes/").content.decode()
    row = {name: page[page.index(f'data-node="{name}"'):].split("</tr>")[0] for name in ("n1", "n2", "n3")}
    assert 'data-node-state="live"' in row["n1"] and "10.250.0.1" in row["n1"] and ">dhcp<" in row["n1"]
    assert 'data-node-state="draining"' in row["n2"] and "Undrain" in row["n2"]
    assert 'data-node-state="down"' in row["n3"] and "node down" in row["n3"]
    instance_node = world["instance"].node
    duties = {name: '<td class="num" data-field="dhcp_duties">1</td>' in row[name] for name in row}
    assert duties == {"n1": True, "n2": True, "n3": False}  # the network's two servers
    assert '<td class="num" data-field="networks">1</td>' in row["n1"]
    assert '<td class="num" data-field="instances">1</td>' in row[instance_node]
    load = {name: int(duties[name]) + int(name == instance_node) for name in row}  # no routers here
    assert all(f'<td class="num" data-field="load">{load[name]}</td>' in row[name] for name in row)
    assert ">Nodes</a>" in page  # the nav link, for superusers


def test_the_nodes_page_answers_in_a_fixed_number_of_queries(world, root):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert root.get("/nodes/").status_code == 200
        return len(ctx.captured_queries)

    Node.objects.exclude(name="n1").delete()
    queries()  # the first page of a session also picks its current tenant
    one = queries()
    for i in (2, 3, 4):
        nodes.node_register(name=f"n{i}", vtep_address=f"10.250.0.{i}")
        services.network_create(tenant=world["tenant"], name=f"more{i}")
    assert Node.objects.count() == 4 and root.get("/nodes/").content.count(b"data-node=") == 4
    assert queries() == one


def test_drain_asks_first_then_moves_the_duties_and_undrain_takes_work_again(world, root):
    network, n1 = world["network"], Node.objects.get(name="n1")
    assert servers(network) == ["n1", "n2"]
    confirm = root.get(f"/nodes/{n1.pk}/drain/")
    assert b"Drain node n1" in confirm.content and b"csrfmiddlewaretoken" in confirm.content
    assert servers(network) == ["n1", "n2"]  # a GET changes nothing
    done = root.post(f"/nodes/{n1.pk}/drain/", follow=True)
    assert b"1 DHCP duties moved off" in done.content
    assert Node.objects.get(name="n1").state == NodeState.DRAINED and servers(network) == ["n3", "n2"]
    assert b"No DHCP servers on this node." in done.content
    root.post(f"/nodes/{n1.pk}/undrain/")
    assert Node.objects.get(name="n1").state == NodeState.UP and servers(network) == ["n3", "n2"]
    refused = root.post(f"/nodes/{n1.pk}/undrain/", follow=True)
    assert b"is not drained" in refused.content


def test_the_node_page_shows_a_failed_jobs_reason_next_to_its_object(world, root):
    network_set_status(network_id=world["network"].pk, status=ObjectStatus.ERROR,
                       reason="dnsmasq exited: address in use")
    n1 = Node.objects.get(name="n1")
    page = root.get(f"/nodes/{n1.pk}/").content.decode()
    row = page[page.index(f'data-network-id="{world["network"].pk}"'):].split("</tr>")[0]
    assert 'data-status="error"' in row and "dnsmasq exited: address in use" in row
    listed = root.get("/nodes/").content.decode()
    assert '<td class="num" data-field="failed"><a' in listed[listed.index('data-node="n1"'):].split("</tr>")[0]


def test_the_network_page_shows_its_dhcp_servers_and_says_when_there_is_no_standby(world, client):
    client.force_login(world["member"])
    page = client.get(world["network"].get_absolute_url()).content.decode()
    section = page[page.index("data-dhcp-servers="):page.index("<h2>Subnets</h2>")]
    assert section.index('data-node="n1"') < section.index('data-node="n2"')
    assert "10.7.0.2" in section and section.count('data-node-state="live"') == 2
    assert "data-dhcp-no-standby hidden" in section

    Node.objects.exclude(name="n1").update(state=NodeState.DOWN)
    alone = services.network_create(tenant=world["tenant"], name="alone", subnet={"cidr": "10.8.0.0/24"})
    page = client.get(alone.get_absolute_url()).content.decode()
    assert "data-dhcp-no-standby>" in page and "runs without a standby" in page
    assert '<span data-field="dhcp_count">1</span> of 2 DHCP servers' in page


def test_the_instance_page_shows_its_node_and_says_node_down(world, client):
    client.force_login(world["member"])
    instance = world["instance"]
    url = f"/instances/{instance.pk}/"
    assert f'data-instance-node="{instance.node}"' in client.get(url).content.decode()
    assert 'data-node-state="live"' in client.get(url).content.decode()
    Node.objects.filter(name=instance.node).update(state=NodeState.DOWN)
    page = client.get(url).content.decode()
    assert 'data-node-state="down"' in page and ">node down</span>" in page
