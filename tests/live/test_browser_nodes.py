"""Nodes in real Chromium (issues 13 and 17): an administrator drains a node on the nodes page, and the open
network page and live topology show its DHCP duty on another node without a reload; a tenant's user gets 404 on
the nodes page. Daphne, channels_redis and the fixtures of test_browser.py."""

from __future__ import annotations

import pytest
from test_browser import WAIT_MS, django_side, open_page, wait_rendered  # noqa: F401

from tenants import nodes, services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NODE_CELLS = ("(name) => ['node_state', 'networks', 'dhcp_duties', 'load'].map((f) => document.querySelector("
              "`tr[data-node=\"${name}\"] [data-field=\"${f}\"]`).textContent.trim()).join(' ')")
FIRST_SERVER_NODE = "() => document.querySelector('[data-dhcp-server-rows] tr[data-dhcp-rank=\"0\"]')?.dataset.node"


def has_element(element_id: str) -> str:
    return f"() => !window.netdashTopology.cy.getElementById('{element_id}').empty()"


def test_a_drain_on_the_nodes_page_moves_the_duty_on_the_open_pages_without_reload(
        daphne_server, two_tenants, user_factory, artifacts, django_side, browser):  # noqa: F811
    acme = two_tenants["acme"]
    for i in (1, 2, 3):
        django_side(nodes.node_register, name=f"n{i}", vtep_address=f"10.250.0.{i}")
    network = django_side(services.network_create, tenant=acme, name="spread", subnet={"cidr": "10.7.0.0/24"})
    admin = user_factory(username="root", is_superuser=True)

    network_page = open_page(browser, daphne_server, admin, network.get_absolute_url())
    network_page.wait_for_function("() => document.body.dataset.liveRendered >= 1", timeout=WAIT_MS)
    assert network_page.evaluate(FIRST_SERVER_NODE) == "n1"
    assert network_page.is_hidden("[data-dhcp-no-standby]")
    topology = network_page.context.new_page()
    topology.errors = []
    topology.on("pageerror", lambda exc: topology.errors.append(str(exc)))
    topology.goto(daphne_server["url"] + f"/live/tenants/{acme.pk}/")
    wait_rendered(topology)
    topology.wait_for_function(has_element("etn1|n2"), timeout=WAIT_MS)
    tunnel = topology.evaluate("() => window.netdashTopology.cy.getElementById('etn1|n2').data('label')")
    assert tunnel == f"VXLAN {network.vni}"
    for page in (network_page, topology):
        page.evaluate("() => { window.__sameDocument = true; }")

    node_list = network_page.context.new_page()  # stays open: its rows follow the drain live
    node_list.goto(daphne_server["url"] + "/nodes/")
    node_list.wait_for_function("() => document.body.dataset.liveRendered >= 1", timeout=WAIT_MS)
    node_list.evaluate("() => { window.__sameDocument = true; }")
    nodes_page = network_page.context.new_page()
    nodes_page.goto(daphne_server["url"] + "/nodes/")
    nodes_page.click('tr[data-node="n1"] a:has-text("Drain")')
    nodes_page.click('form button[type=submit]:has-text("Drain")')
    nodes_page.wait_for_selector("text=1 DHCP duties moved off", timeout=WAIT_MS)
    assert "draining" in nodes_page.inner_text("h1")

    network_page.wait_for_function(f"() => ({FIRST_SERVER_NODE})() === 'n3'", timeout=WAIT_MS)
    assert network_page.inner_text('[data-dhcp-server-rows] tr[data-dhcp-rank="1"] [data-field="node"]') == "n2"
    assert network_page.inner_text('[data-network-id] [data-field="node"]') == "n3"  # its queue moved with it
    node_list.wait_for_function(f"() => ({NODE_CELLS})('n3') === 'live 1 1 1'", timeout=WAIT_MS)
    assert node_list.evaluate(f"({NODE_CELLS})('n1')") == "draining 0 0 0"  # agent, networks, DHCP duties, load
    assert node_list.evaluate("() => window.__sameDocument") is True, "the nodes page reloaded"
    topology.wait_for_function(has_element("etn2|n3"), timeout=WAIT_MS)
    topology.wait_for_function("() => window.netdashTopology.cy.getElementById('etn1|n2').empty()", timeout=WAIT_MS)
    label = topology.evaluate(f"() => window.netdashTopology.cy.getElementById('d{network.pk}').data('label')")
    assert "on n3, n2 standby" in label
    later = django_side(services.network_create, tenant=acme, name="later")  # n2 and n3: n1 takes no new work
    topology.wait_for_function(
        "() => window.netdashTopology.cy.getElementById('etn2|n3').data('label') === "
        f"'VXLAN {network.vni}, {later.vni}'", timeout=WAIT_MS)  # from network.created alone
    for page in (network_page, topology):
        assert page.evaluate("() => window.__sameDocument") is True, "the page reloaded"
        assert page.errors == []
    network_page.screenshot(path=str(artifacts / "network-dhcp-servers-after-drain.png"), full_page=True)
    topology.screenshot(path=str(artifacts / "live-topology-nodes.png"), full_page=True)


def test_a_tenant_user_gets_404_on_the_nodes_page(daphne_server, two_tenants, browser):  # noqa: F811
    page = open_page(browser, daphne_server, two_tenants["alice"], "/")
    response = page.goto(daphne_server["url"] + "/nodes/")
    assert response.status == 404
    assert "Nodes" not in page.goto(daphne_server["url"] + "/").text()
