"""The live pages in real Chromium, served by a real daphne, fed by the real channels_redis layer.

The test process changes rows through services (which publish after commit) and the open page must follow
without a reload: a new network appears, changes colour with its status, and the lease panel shows a lease the
moment its event is published. A second tenant using the same CIDR sees only its own network.
Screenshots of each diagram go to $ARTIFACTS_DIR.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone
from live_helpers import session_cookie

from tenants import events, selectors, services
from tenants.choices import LeaseEventKind, ObjectStatus
from tenants.models import Lease, LeaseEvent
from tenants.status import network_set_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLOURS = {"pending": "#7c3aed", "active": "#16a34a", "error": "#dc2626"}
WAIT_MS = 10_000


@pytest.fixture
def django_side():
    """Run a callable on a thread without an event loop (services publish through async_to_sync)."""
    from django.db import connections

    pool = ThreadPoolExecutor(max_workers=1)

    def call(fn, /, *args, **kwargs):
        return pool.submit(fn, *args, **kwargs).result(timeout=30)

    yield call
    pool.submit(connections.close_all).result()
    pool.shutdown()


def open_page(browser, server, user, path: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([session_cookie(user, server["url"])])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"] + path)
    page.errors = errors
    return page


def wait_rendered(page) -> None:
    page.wait_for_function("() => document.getElementById('live-cy')?.dataset.rendered >= 1", timeout=WAIT_MS)


def node_colour(page, node_id: str) -> str | None:
    script = "(id) => window.netdashTopology.cy.getElementById(id).data('colour') ?? null"
    return page.evaluate(script, node_id)


def test_topology_shows_a_new_network_and_its_status_changes_without_reload(
        daphne_server, two_tenants, artifacts, django_side, browser):
    acme, alice = two_tenants["acme"], two_tenants["alice"]
    page = open_page(browser, daphne_server, alice, f"/live/tenants/{acme.pk}/")
    wait_rendered(page)
    page.evaluate("() => { window.__sameDocument = true; }")
    before = page.evaluate(f"() => window.netdashTopology.cy.getElementById('d{two_tenants['net_a'].pk}').position()")

    network = django_side(services.network_create, tenant=acme, name="live-net", subnet={"cidr": "10.9.0.0/24"})
    django_side(services.instance_create, network=network, hostname="web1")
    page.wait_for_function(f"() => !window.netdashTopology.cy.getElementById('n{network.pk}').empty()",
                           timeout=WAIT_MS)
    assert node_colour(page, f"n{network.pk}") == COLOURS["pending"]
    for status in ("active", "error"):
        django_side(network_set_status, network_id=network.pk, status=status,
                    reason="test" if status == "error" else "")
        page.wait_for_function(
            f"() => window.netdashTopology.cy.getElementById('n{network.pk}').data('colour') === '{COLOURS[status]}'",
            timeout=WAIT_MS)
        assert node_colour(page, f"d{network.pk}") == COLOURS[status]  # the DHCP namespace shows dnsmasq's state
    django_side(network_set_status, network_id=network.pk, status=ObjectStatus.ACTIVE)
    page.wait_for_function(f"() => window.netdashTopology.cy.getElementById('d{network.pk}').data('colour') === "
                           f"'{COLOURS['active']}'", timeout=WAIT_MS)

    assert page.evaluate("() => window.__sameDocument") is True, "the page reloaded"
    after = page.evaluate(f"() => window.netdashTopology.cy.getElementById('d{two_tenants['net_a'].pk}').position()")
    assert after == before, "an existing node moved when another network appeared"
    labels = page.evaluate("() => window.netdashTopology.cy.nodes().map(n => n.data('label'))")
    assert any("web1" in label for label in labels)
    assert not any("globex" in label for label in labels)

    # Search highlights and the details panel shows the kernel names and a link.
    page.fill("#live-search", "web1")
    page.wait_for_function("() => window.netdashTopology.cy.$('.match').length === 1", timeout=WAIT_MS)
    page.fill("#live-search", "")
    # (Braces: return nothing — serialising a Cytoscape collection back to Python takes many seconds.)
    page.evaluate(f"() => {{ window.netdashTopology.cy.getElementById('n{network.pk}').emit('tap'); }}")
    details = page.inner_text("#live-details")
    assert "live-net" in details and f"qdhcp-{network.kernel_id}" in details
    page.evaluate("() => { window.netdashTopology.cy.fit(undefined, 40); }")
    page.screenshot(path=str(artifacts / "live-topology-tenant.png"), full_page=True)
    stats = page.evaluate("() => window.netdashTopology.socket.stats")
    assert stats["reconnects"] == 0 and stats["snapshots"] == 1, (stats, daphne_server["log"].read_text()[-3000:])
    assert page.errors == []


def publish_lease_added(django_side, tenant, subnet, instance, ip: str) -> Lease:
    """An active lease row and its ADD event for ``instance`` on ``ip``, published as the lease sync does."""
    lease = Lease.objects.create(subnet=subnet, instance=instance, ip_address=ip, mac_address=instance.mac_address,
                                 hostname=instance.hostname, expires_at=timezone.now() + timedelta(seconds=600))
    event = LeaseEvent.objects.create(subnet=subnet, lease=lease, kind=LeaseEventKind.ADD, ip_address=ip,
                                      mac_address=lease.mac_address, hostname=lease.hostname)
    lease = Lease.objects.select_related("subnet").get(pk=lease.pk)
    data = selectors.lease_data(lease) | {"event": selectors.lease_event_data(event)}
    django_side(events.send_now, tenant.pk, "lease.added", data)
    return lease


def test_lease_panel_follows_instances_and_lease_events(daphne_server, two_tenants, artifacts, django_side, browser):
    acme, net_a = two_tenants["acme"], two_tenants["net_a"]
    subnet = net_a.subnets.get()
    page = open_page(browser, daphne_server, two_tenants["alice"], f"/live/subnets/{subnet.pk}/")
    page.wait_for_function("() => document.querySelector('[data-lease-panel]')?.dataset.rendered >= 1",
                           timeout=WAIT_MS)
    assert page.get_attribute(f'.cell[data-ip="{subnet.gateway}"]', "class") == "cell gateway"
    assert page.get_attribute(f'.cell[data-ip="{subnet.dhcp_address}"]', "class") == "cell dhcp"

    instance = django_side(services.instance_create, network=net_a, hostname="vm-lease")
    cell = f'.cell[data-ip="{instance.ip_address}"]'
    page.wait_for_function(f"() => document.querySelector('{cell}').classList.contains('reserved')", timeout=WAIT_MS)

    lease = publish_lease_added(django_side, acme, subnet, instance, instance.ip_address)
    page.wait_for_function(f"() => document.querySelector('{cell}').classList.contains('leased')", timeout=WAIT_MS)
    row = page.inner_text(f'tr[data-lease="{lease.pk}"]')
    assert instance.ip_address in row and "vm-lease" in row and (" m " in row)
    assert "add" in page.inner_text('[data-role="timeline"]')
    page.screenshot(path=str(artifacts / "live-lease-panel.png"), full_page=True)

    lease.state = "released"
    lease.save()
    django_side(events.send_now, acme.pk, "lease.released", selectors.lease_data(lease))
    page.wait_for_function(f"() => document.querySelector('{cell}').classList.contains('reserved')", timeout=WAIT_MS)
    assert "release" in page.inner_text('[data-role="timeline"]')
    assert page.errors == []


def test_second_tenant_with_the_same_cidr_sees_only_its_own_network(
        daphne_server, two_tenants, user_factory, artifacts, django_side, browser):
    acme, globex = two_tenants["acme"], two_tenants["globex"]
    page_b = open_page(browser, daphne_server, two_tenants["bob"], f"/live/tenants/{globex.pk}/")
    wait_rendered(page_b)
    names = page_b.evaluate("() => Array.from(window.netdashTopology.store.networks.values()).map(n => n.name)")
    assert names == ["globex-net"]
    # Acme changes something, then Globex does: once Globex's change is on the page, Acme's had its chance.
    django_side(network_set_status, network_id=two_tenants["net_a"].pk, status=ObjectStatus.ERROR,
                reason="acme only")
    django_side(services.network_create, tenant=acme, name="acme-secret", subnet={"cidr": "192.168.1.0/24"})
    django_side(network_set_status, network_id=two_tenants["net_b"].pk, status=ObjectStatus.ACTIVE)
    page_b.wait_for_function(
        f"() => window.netdashTopology.cy.getElementById('n{two_tenants['net_b'].pk}').data('colour') === "
        f"'{COLOURS['active']}'", timeout=WAIT_MS)
    names = page_b.evaluate("() => Array.from(window.netdashTopology.store.networks.values()).map(n => n.name)")
    assert names == ["globex-net"]
    assert page_b.evaluate("() => window.netdashTopology.socket.stats.gaps") == 0
    page_b.screenshot(path=str(artifacts / "live-topology-second-tenant.png"), full_page=True)

    # Bob cannot open Acme's page nor its socket.
    response = page_b.goto(daphne_server["url"] + f"/live/tenants/{acme.pk}/")
    assert response.status == 404

    # The superuser's isolation view: both 192.168.1.0/24 subnets, in two tenants, in two DHCP namespaces.
    root = user_factory(username="root", is_superuser=True)
    page_all = open_page(browser, daphne_server, root, "/live/all/")
    wait_rendered(page_all)
    shared = page_all.evaluate("() => window.netdashTopology.cy.nodes('[kind=\"subnet\"][?shared]').length")
    assert shared == 3  # acme-net, acme-secret and globex-net all use 192.168.1.0/24
    tenants = page_all.evaluate("() => window.netdashTopology.cy.nodes('[kind=\"tenant\"]').map(n => n.data('label'))")
    assert sorted(tenants) == ["Acme", "Globex"]
    page_all.screenshot(path=str(artifacts / "live-topology-isolation.png"), full_page=True)
    assert page_b.errors == [] and page_all.errors == []


def test_ipv6_lease_panel_lists_leases_and_timeline_without_a_grid(daphne_server, two_tenants, django_side,
                                                                   browser):
    """A /64 has no address grid; its leases appear live in the table and the timeline all the same."""
    acme, net_a = two_tenants["acme"], two_tenants["net_a"]
    subnet = django_side(services.subnet_create, network=net_a, cidr="2001:db8:ac::/64",
                         ipv6_ra_mode="dhcpv6-stateful", ipv6_address_mode="dhcpv6-stateful")
    instance = django_side(services.instance_create, network=net_a, hostname="vm-six")
    page = open_page(browser, daphne_server, two_tenants["alice"], f"/live/subnets/{subnet.pk}/")
    page.wait_for_function("() => document.querySelector('[data-lease-panel]')?.dataset.rendered >= 1",
                           timeout=WAIT_MS)
    assert "too large to draw" in page.inner_text("[data-lease-panel]")
    assert page.locator(".cell[data-ip]").count() == 0
    lease = publish_lease_added(django_side, acme, subnet, instance, instance.ipv6_address)
    page.wait_for_selector(f'tr[data-lease="{lease.pk}"]', timeout=WAIT_MS)
    row = page.inner_text(f'tr[data-lease="{lease.pk}"]')
    assert instance.ipv6_address in row and "vm-six" in row
    assert "add" in page.inner_text('[data-role="timeline"]')
    assert page.errors == []
