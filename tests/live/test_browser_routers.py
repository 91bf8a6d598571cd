"""A router made in the portal's form appears in the open live topology without a reload, between its subnet and
its external network, and a floating IP shows under the instance it reaches (issue 14). Real Chromium, daphne,
channels_redis, as in test_browser.py."""

from __future__ import annotations

import pytest
from test_browser import WAIT_MS, django_side, open_page, wait_rendered  # noqa: F401

from tenants import routers, services
from tenants.choices import Role
from tenants.models import Router

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def has_element(page, element_id: str) -> str:
    return f"() => !window.netdashTopology.cy.getElementById('{element_id}').empty()"


def test_a_router_created_in_the_page_appears_in_the_topology_without_reload(
        daphne_server, two_tenants, artifacts, django_side, browser):  # noqa: F811
    acme, alice, net_a = two_tenants["acme"], two_tenants["alice"], two_tenants["net_a"]
    django_side(services.membership_set, tenant=acme, user=alice, role=Role.ADMIN)
    operators = django_side(services.tenant_create, name="Operators", slug="operators")
    external = django_side(routers.external_network_create, tenant=operators, name="public",
                           subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})
    vm = django_side(services.instance_create, network=net_a, hostname="web1")

    topology = open_page(browser, daphne_server, alice, f"/live/tenants/{acme.pk}/")
    wait_rendered(topology)
    topology.evaluate("() => { window.__sameDocument = true; }")
    form = topology.context.new_page()
    form.goto(daphne_server["url"] + "/routers/new/")
    form.fill("input[name=name]", "edge")
    form.select_option("select[name=external_network]", str(external.pk))
    form.click("button[type=submit]")
    form.wait_for_url("**/routers/*/")
    router = Router.objects.get(tenant=acme, name="edge")
    topology.wait_for_function(has_element(topology, f"r{router.pk}"), timeout=WAIT_MS)
    topology.wait_for_function(has_element(topology, f"eg{router.pk}"), timeout=WAIT_MS)
    gateway = topology.evaluate(f"() => window.netdashTopology.cy.getElementById('eg{router.pk}').data()")
    assert gateway["target"] == f"x{external.pk}" and gateway["label"].startswith("203.0.113.")

    form.select_option("select[name=subnet]", str(net_a.subnets.get().pk))
    form.click("[data-interface-form] button[type=submit]")
    subnet_node = f"s{net_a.subnets.get().pk}"
    topology.wait_for_function(has_element(topology, f"er{router.pk}{subnet_node}"), timeout=WAIT_MS)

    fip = django_side(routers.floating_ip_allocate, tenant=acme, external_network=external)
    django_side(routers.floating_ip_associate, floating_ip=fip, instance=vm)
    topology.wait_for_function(
        f"() => (window.netdashTopology.cy.getElementById('i{vm.pk}').data('label') || '').includes('{fip.address}')",
        timeout=WAIT_MS)
    topology.evaluate(f"() => {{ window.netdashTopology.cy.getElementById('r{router.pk}').emit('tap'); }}")
    assert "edge" in topology.inner_text("#live-details")
    assert topology.evaluate("() => window.__sameDocument") is True, "the page reloaded"
    topology.evaluate("() => { window.netdashTopology.cy.fit(undefined, 40); }")
    topology.screenshot(path=str(artifacts / "live-topology-router.png"), full_page=True)
    assert topology.errors == []


def test_router_and_floating_ip_pages_follow_changes_without_reload(
        daphne_server, two_tenants, django_side, browser):  # noqa: F811
    acme, alice, net_a = two_tenants["acme"], two_tenants["alice"], two_tenants["net_a"]
    operators = django_side(services.tenant_create, name="Operators", slug="operators")
    external = django_side(routers.external_network_create, tenant=operators, name="public",
                           subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})
    router = django_side(routers.router_create, tenant=acme, name="edge")
    django_side(routers.router_interface_add, router=router, subnet=net_a.subnets.get())
    vm = django_side(services.instance_create, network=net_a, hostname="web1")
    detail = open_page(browser, daphne_server, alice, f"/routers/{router.pk}/")
    listing = detail.context.new_page()
    listing.goto(daphne_server["url"] + "/floating-ips/")
    for page in (detail, listing):
        page.wait_for_function("() => +document.body.dataset.liveRendered >= 1", timeout=WAIT_MS)
        page.evaluate("() => { window.__sameDocument = true; }")

    django_side(routers.router_set_gateway, router=router, external_network=external)
    detail.wait_for_function("() => document.querySelector('[data-router-id] [data-field=external_ip]')"
                             ".textContent.startsWith('203.0.113.')", timeout=WAIT_MS)
    assert detail.inner_text("[data-router-id] [data-field=external_network]") == "public"
    fip = django_side(routers.floating_ip_allocate, tenant=acme, external_network=external)
    listing.wait_for_selector(f"[data-floating-ip-list] tr[data-floating-ip-id='{fip.pk}']", timeout=WAIT_MS)
    django_side(routers.floating_ip_associate, floating_ip=fip, instance=vm)
    listing.wait_for_function(f"() => document.querySelector(\"tr[data-floating-ip-id='{fip.pk}'] "
                              "[data-field=instance]\").textContent.includes('web1')", timeout=WAIT_MS)
    for page in (detail, listing):
        assert page.evaluate("() => window.__sameDocument") is True, "the page reloaded"
    assert detail.errors == []
