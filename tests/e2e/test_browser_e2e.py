"""End to end in real Chromium against the real stack: daphne + the real agent (``manage.py agent``) realising
networks as namespaces with dnsmasq, instances whose udhcpc gets a real lease.

A tenant user signs in through the login form, creates a network with 192.168.1.0/24 and an instance in the
UI, and — without any reload — sees the network turn active on its detail page, the network appear in the
network list, the instance appear in the topology tab (opened before the instance existed), and its lease
appear in the lease panel, the instance row and the lease table. A second tenant using the same CIDR sees only
its own network and gets 404 for the first tenant's. Everything is deleted through the UI and the agent is
waited for. Screenshots: ``$ARTIFACTS_DIR/e2e-*.png``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tenants import services
from tenants.choices import Role

pytestmark = [pytest.mark.browser, pytest.mark.host, pytest.mark.django_db(transaction=True)]

PASSWORD = "e2e-pw-not-used-elsewhere-7"
CIDR = "192.168.1.0/24"
WAIT_MS = 20_000  # agent work on a shared 2-core machine: realise ~1 s, first lease a few seconds
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "artifacts"))


def new_tab(context, stack, path: str):
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    if path:
        page.goto(stack.url + path)
    return page


def sign_in(browser, stack, username: str):
    """A fresh browser context signed in through the real login form; returns (context, network-list tab)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = new_tab(context, stack, "/")
    assert "/accounts/login/" in page.url  # anonymous: sent to the form
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/")
    return context, page


def mark_document(page) -> None:
    """Set a flag a reload would lose."""
    page.evaluate("() => { window.__sameDocument = true; }")


def same_document(page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


def wait_live(page) -> None:
    """The page's live socket has applied its first snapshot."""
    page.wait_for_function("() => +document.body.dataset.liveRendered >= 1", timeout=WAIT_MS)


def wait_selector(page, selector: str) -> None:
    page.wait_for_selector(selector, state="attached", timeout=WAIT_MS)


def create_network(page, stack, name: str) -> int:
    page.goto(stack.url + "/networks/new/")
    page.fill("#id_name", name)
    page.fill("#id_cidr", CIDR)
    page.click("button[type=submit]:has-text('Create network')")
    page.wait_for_url("**/networks/*/")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def topology_store(page, what: str):
    return page.evaluate(f"() => Array.from(window.netdashTopology.store.{what}.values())")


def delete_through_ui(page, stack, path: str) -> None:
    page.goto(stack.url + path)
    page.click("form button.btn.danger")
    page.wait_for_load_state()


def wait_until(predicate, timeout: float, what: str, stack) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\nagent log:\n{stack.log_tail('agent')}")
        time.sleep(0.1)


@pytest.fixture
def tenants_and_users(user_factory, tenant_factory):
    """Acme (alice) and Globex (bob); created before the browser starts (services publish from this thread)."""
    alice = user_factory(username="alice", password=PASSWORD)
    bob = user_factory(username="bob", password=PASSWORD)
    acme, globex = tenant_factory(name="Acme", slug="acme"), tenant_factory(name="Globex", slug="globex")
    services.membership_set(tenant=acme, user=alice, role=Role.MEMBER)
    services.membership_set(tenant=globex, user=bob, role=Role.MEMBER)
    return {"acme": acme, "globex": globex}


def test_tenant_builds_a_network_and_instance_and_watches_them_go_live(tenants_and_users, stack, chromium):
    from tenants.hostspecs import driver
    from tenants.models import Instance, Network

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    acme, globex = tenants_and_users["acme"], tenants_and_users["globex"]
    t0 = time.monotonic()

    # --- Alice signs in; her network list is live before the network exists -----------------------------
    alice, listing = sign_in(chromium, stack, "alice")
    wait_live(listing)
    mark_document(listing)

    # --- she creates network + subnet in the form; the agent is paused so the page must see it turn active -
    detail = new_tab(alice, stack, "")
    with stack.agent_paused():
        network_id = create_network(detail, stack, "e2e-net")
        badge = f'[data-network-id="{network_id}"][data-status] > .page-head [data-field="status"]'
        assert detail.get_attribute(badge, "data-status") == "pending"
        wait_live(detail)
        mark_document(detail)
        wait_selector(listing, f'tr[data-network-id="{network_id}"]')  # appeared in the list, no reload
    detail.wait_for_selector(f'{badge}[data-status="active"]', timeout=WAIT_MS)
    assert detail.inner_text(badge) == "Active"
    assert detail.get_attribute(badge, "class") == "badge active"
    wait_selector(listing, f'tr[data-network-id="{network_id}"][data-status="active"]')
    subnet_id = int(detail.get_attribute("section[data-lease-panel]", "data-lease-panel"))
    assert detail.get_attribute(f'a[data-topology-link][href="/live/tenants/{acme.pk}/"]', "href")

    # --- the topology opens in a second tab BEFORE the instance exists ----------------------------------
    topology = new_tab(alice, stack, f"/live/tenants/{acme.pk}/")
    topology.wait_for_function("() => document.getElementById('live-cy')?.dataset.rendered >= 1", timeout=WAIT_MS)
    mark_document(topology)
    assert [n["name"] for n in topology_store(topology, "networks")] == ["e2e-net"]
    assert topology_store(topology, "instances") == []

    # --- the instance, created in the UI from a third tab ------------------------------------------------
    creator = new_tab(alice, stack, f"/networks/{network_id}/")
    creator.click("a:has-text('New instance')")
    creator.fill("#id_hostname", "web1")
    creator.click("button[type=submit]:has-text('Create instance')")
    creator.wait_for_url("**/instances/*/")
    instance = Instance.objects.get(network_id=network_id, hostname="web1")
    ip = instance.ip_address
    assert ip.startswith("192.168.1.")
    wait_live(creator)
    mark_document(creator)

    # The topology tab shows it, then shows it leased (thick ring) — no reload.
    topology.wait_for_function(f"() => !window.netdashTopology.cy.getElementById('i{instance.pk}').empty()",
                               timeout=WAIT_MS)
    topology.wait_for_function(
        f"() => window.netdashTopology.cy.getElementById('i{instance.pk}').data('leased') === true", timeout=WAIT_MS)

    # The network page (open since before the instance existed): row, lease panel cell, lease table row.
    row = f'tr[data-instance-id="{instance.pk}"]'
    wait_selector(detail, row)
    detail.wait_for_selector(f'{row}[data-status="active"]', timeout=WAIT_MS)
    assert ip in detail.inner_text(f'{row} [data-field="ip_address"]')
    assert detail.inner_text(f'{row} [data-field="lease"]') == "Leased"
    cell = f'section[data-lease-panel="{subnet_id}"] .cell[data-ip="{ip}"]'
    detail.wait_for_function(f"() => document.querySelector('{cell}')?.classList.contains('leased')",
                             timeout=WAIT_MS)
    panel_row = detail.inner_text(f'section[data-lease-panel="{subnet_id}"] tbody[data-role="leases"] tr')
    assert ip in panel_row and instance.mac_address in panel_row
    lease_row = detail.locator("table[data-lease-list] tr[data-lease-id]", has_text=ip)
    lease_row.wait_for(timeout=WAIT_MS)
    assert lease_row.get_attribute("data-status") == "active" and "Active" in lease_row.inner_text()
    detail.locator("[data-event-list] li.lease", has_text=f"lease.add {ip}").wait_for(timeout=WAIT_MS)
    # The list's counts and the instance page's lease followed too.
    wait_selector(listing, f'tr[data-network-id="{network_id}"] [data-field="lease_count"]:text-is("1")')
    assert listing.inner_text(f'tr[data-network-id="{network_id}"] [data-field="instance_count"]') == "1"
    creator.wait_for_selector('[data-instance-lease] [data-lease-facts]:not([hidden])', timeout=WAIT_MS)
    assert creator.inner_text('[data-instance-lease] [data-field="ip_address"]') == ip
    creator.wait_for_selector(f'[data-instance-id="{instance.pk}"][data-status="active"]', timeout=WAIT_MS)
    assert same_document(creator), "the instance page reloaded"

    # --- screenshots of each diagram ---------------------------------------------------------------------
    topology.evaluate("() => { window.netdashTopology.cy.fit(undefined, 40); }")
    topology.screenshot(path=str(ARTIFACTS / "e2e-topology.png"), full_page=True)
    detail.locator(f'section[data-lease-panel="{subnet_id}"]').screenshot(path=str(ARTIFACTS / "e2e-lease-panel.png"))
    detail.screenshot(path=str(ARTIFACTS / "e2e-network-detail.png"), full_page=True)
    listing.screenshot(path=str(ARTIFACTS / "e2e-network-list.png"), full_page=True)
    creator.screenshot(path=str(ARTIFACTS / "e2e-instance-detail.png"), full_page=True)

    # --- a second tenant with the same CIDR: only its own network, 404 for Acme's ------------------------
    globex_ctx, bob_list = sign_in(chromium, stack, "bob")
    assert bob_list.locator("tr[data-network-id]").count() == 0
    wait_live(bob_list)
    bob_list.screenshot(path=str(ARTIFACTS / "e2e-network-list-empty.png"), full_page=True)
    bob_detail = new_tab(globex_ctx, stack, "")
    bob_network_id = create_network(bob_detail, stack, "globex-net")
    bob_badge = f'[data-network-id="{bob_network_id}"][data-status] > .page-head [data-field="status"]'
    bob_detail.wait_for_selector(f'{bob_badge}[data-status="active"]', timeout=WAIT_MS)
    bob_topology = new_tab(globex_ctx, stack, f"/live/tenants/{globex.pk}/")
    bob_topology.wait_for_function("() => document.getElementById('live-cy')?.dataset.rendered >= 1",
                                   timeout=WAIT_MS)
    assert [n["name"] for n in topology_store(bob_topology, "networks")] == ["globex-net"]
    assert [s["cidr"] for s in topology_store(bob_topology, "subnets")] == [CIDR]
    assert topology_store(bob_topology, "instances") == []
    bob_topology.screenshot(path=str(ARTIFACTS / "e2e-topology-second-tenant.png"), full_page=True)
    assert bob_list.locator(f'tr[data-network-id="{bob_network_id}"]').count() == 1
    assert bob_list.locator(f'tr[data-network-id="{network_id}"]').count() == 0
    response = bob_detail.goto(stack.url + f"/networks/{network_id}/")
    assert response.status == 404
    response = bob_detail.goto(stack.url + f"/live/tenants/{acme.pk}/")
    assert response.status == 404
    # Alice's pages never heard of Globex's network, though both are 192.168.1.0/24 on the same host.
    assert listing.locator(f'tr[data-network-id="{bob_network_id}"]').count() == 0
    assert [n["name"] for n in topology_store(topology, "networks")] == ["e2e-net"]
    both = Network.objects.filter(pk__in=[network_id, bob_network_id])
    assert {n.subnets.get().cidr for n in both} == {CIDR}
    assert len({n.kernel_id for n in both}) == 2

    # --- delete through the UI: the instance row disappears live, then both networks --------------------
    delete_through_ui(creator, stack, f"/instances/{instance.pk}/delete/")
    detail.wait_for_selector(row, state="detached", timeout=WAIT_MS)
    topology.wait_for_function(f"() => window.netdashTopology.cy.getElementById('i{instance.pk}').empty()",
                               timeout=WAIT_MS)
    # udhcpc released the address on the way out: the lease row says so in place, the pool cell is free again.
    detail.wait_for_function(f"() => document.querySelector('{cell}')?.classList.contains('free')", timeout=WAIT_MS)
    lease_row.locator('[data-field="state"]:text-is("Released")').wait_for(timeout=WAIT_MS)
    delete_through_ui(bob_detail, stack, f"/networks/{bob_network_id}/delete/")
    delete_through_ui(creator, stack, f"/networks/{network_id}/delete/")
    listing.wait_for_selector(f'tr[data-network-id="{network_id}"]', state="detached", timeout=WAIT_MS)
    detail.wait_for_selector("[data-live-gone]", timeout=WAIT_MS)  # the open detail page says it is gone
    wait_until(lambda: not Network.objects.filter(pk__in=[network_id, bob_network_id]).exists(), WAIT_MS / 1000,
               "the agent to delete both networks", stack)
    host = driver().scan_host()
    assert not host.networks and not host.instances, host

    for page in (listing, detail, topology):
        assert same_document(page), f"{page.url} reloaded"
    errors = [e for p in (listing, detail, topology, creator, bob_list, bob_detail, bob_topology) for e in p.errors]
    assert errors == []
    assert stack.agent_alive(), stack.log_tail("agent")
    assert time.monotonic() - t0 < 60
    globex_ctx.close()
    alice.close()
