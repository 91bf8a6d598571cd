"""The topology readable at every size (issue 16), measured in real Chromium against a real daphne.

What is measured is what a person sees: every label inside the canvas has its on-screen font size (its style's
font size times the zoom, what Cytoscape draws with) at 11 px or more, the drawing fills the canvas, and boxes
are wide enough to read. At 7 networks (isolation view), a tenant page, 50 and 500 networks. At 500 networks /
2,000 instances the page also shows its level of detail at work: networks collapsed to tiles with counts, a
search that zooms to a hit far away, a tile that expands without overlapping its neighbours, and a tile the
user dragged stays where it was put across a reload. Screenshots of each size go to $ARTIFACTS_DIR.

This module's daphne sends snapshots in 64 KiB parts (``LIVE_FRAME_BYTES``): the 50- and 500-network pages draw
from snapshots reassembled in the browser, the way a snapshot over daphne's 1 MiB message limit arrives.
"""

from __future__ import annotations

import pytest
from live_helpers import session_cookie

from bench.topology_rows import seed
from tenants import services
from tenants.choices import Role
from tenants.models import Instance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 60_000
LIVE_FRAME_BYTES = 64 * 1024  # read by the daphne_server fixture
VIEWPORT = {"width": 1400, "height": 900}

# Every labelled element inside the canvas: its on-screen font size; the drawing's extent inside the canvas; the
# narrowest network box on screen (a tile or a card).
MEASURE = """() => {
  const t = window.netdashTopology, cy = t.cy, z = cy.zoom(), W = cy.width(), H = cy.height();
  const inView = e => { const b = e.renderedBoundingBox({ includeLabels: false });
    return b.x2 > 0 && b.x1 < W && b.y2 > 0 && b.y1 < H; };
  const px = cy.elements().filter(e => e.data('label') && inView(e)).map(e => e.pstyle('font-size').pfValue * z);
  const bb = cy.elements().renderedBoundingBox();
  const nets = cy.nodes('[kind="network"]').filter(inView).map(n => n.renderedOuterWidth());
  return { zoom: z, W: W, H: H, labels: px.length, minPx: Math.min(...px),
    fillW: (Math.min(bb.x2, W) - Math.max(bb.x1, 0)) / W, fillH: (Math.min(bb.y2, H) - Math.max(bb.y1, 0)) / H,
    networksInView: nets.length, narrowestNetworkPx: Math.min(...nets), collapsed: t.collapsed.size };
}"""


def open_page(browser, server, user, path: str):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([session_cookie(user, server["url"])])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"] + path)
    page.errors = errors
    wait_drawn(page)
    return page


def wait_drawn(page) -> None:
    page.wait_for_function("() => window.netdashTopology?.rendered.firstDrawMs > 0", timeout=WAIT_MS)


def assert_readable(m: dict, *, min_box_px: float) -> None:
    assert m["labels"] > 0, m
    assert m["minPx"] >= 11, f"a label is drawn at {m['minPx']:.1f} px: {m}"
    assert m["fillW"] >= 0.8 or m["fillH"] >= 0.8, f"the drawing does not fill the canvas: {m}"
    assert m["narrowestNetworkPx"] >= min_box_px, m


@pytest.fixture
def seven_networks(user_factory, tenant_factory):
    """Three tenants with 3 + 2 + 2 networks (two of them on the same CIDR), one or two instances each."""
    root = user_factory(username="root", is_superuser=True)
    alice = user_factory(username="alice")
    tenants = [tenant_factory(name=name, slug=name.lower()) for name in ("Acme", "Globex", "Initech")]
    services.membership_set(tenant=tenants[0], user=alice, role=Role.MEMBER)
    for t, n_networks in zip(tenants, (3, 2, 2), strict=True):
        for j in range(n_networks):
            network = services.network_create(tenant=t, name=f"{t.slug}-net{j}",
                                              subnet={"cidr": f"192.168.{j + 1}.0/24"})
            for k in range(1 + j % 2):
                services.instance_create(network=network, hostname=f"{t.slug}-vm{j}{k}")
    return {"root": root, "alice": alice, "acme": tenants[0]}


def test_seven_networks_and_a_tenant_page_are_readable_at_first_draw(
        daphne_server, seven_networks, artifacts, browser):
    page = open_page(browser, daphne_server, seven_networks["root"], "/live/all/")
    m = page.evaluate(MEASURE)
    page.screenshot(path=str(artifacts / "topology-7-networks.png"), full_page=True)
    assert_readable(m, min_box_px=150)
    assert m["networksInView"] == 7, m  # all of them, not a corner
    assert page.errors == []

    acme = seven_networks["acme"]
    page = open_page(browser, daphne_server, seven_networks["alice"], f"/live/tenants/{acme.pk}/")
    m = page.evaluate(MEASURE)
    page.screenshot(path=str(artifacts / "topology-tenant.png"), full_page=True)
    assert m["collapsed"] == 0, m  # three networks: every instance is drawn
    assert_readable(m, min_box_px=300)
    assert m["networksInView"] == 3, m
    assert page.errors == []


def test_fifty_networks_are_readable_at_first_draw(daphne_server, artifacts, browser):
    tenant, user = seed(slug="fifty", n_networks=50, n_instances=200)
    page = open_page(browser, daphne_server, user, f"/live/tenants/{tenant.pk}/")
    m = page.evaluate(MEASURE)
    page.screenshot(path=str(artifacts / "topology-50-networks.png"), full_page=True)
    assert_readable(m, min_box_px=150)
    assert page.errors == []


def _tile_on_screen(page, node_id: str) -> dict:
    """Where node ``node_id`` is on the page (CSS px), and whether it is inside the canvas."""
    return page.evaluate("""(id) => { const cy = window.netdashTopology.cy, n = cy.getElementById(id);
      const r = n.renderedPosition(), box = cy.container().getBoundingClientRect(), b = n.renderedBoundingBox();
      return { x: box.left + r.x, y: box.top + r.y, model: n.position(),
               inView: b.x1 >= 0 && b.y1 >= 0 && b.x2 <= cy.width() && b.y2 <= cy.height() }; }""", node_id)


def test_500_networks_collapse_search_zooms_expand_and_moves_persist(daphne_server, artifacts, browser):
    tenant, user = seed(slug="big", n_networks=500, n_instances=2000)
    page = open_page(browser, daphne_server, user, f"/live/tenants/{tenant.pk}/")
    m = page.evaluate(MEASURE)
    page.screenshot(path=str(artifacts / "topology-500-networks.png"), full_page=True)
    parts = page.evaluate("() => window.netdashTopology.socket.stats.snapshotParts")
    assert parts >= 10, parts  # about 1 MB in 64 KiB frames: the page drew a reassembled snapshot
    assert page.evaluate("() => window.netdashTopology.store.instances.size") == 2000
    assert m["collapsed"] == 500, m
    assert_readable(m, min_box_px=150)
    tile = page.evaluate("() => window.netdashTopology.cy.nodes('[kind=\"network\"]')[0].data('label')")
    assert "4 instances" in tile  # a collapsed network says what it holds

    # Search: an instance of a network far from the first view; the view zooms to its tile, readably.
    target = Instance.objects.select_related("network").get(network__tenant=tenant, hostname="vm-1234")
    tile_id = f"n{target.network_id}"
    assert not _tile_on_screen(page, tile_id)["inView"]
    page.fill("#live-search", "vm-1234")
    page.wait_for_function(f"""() => {{ const t = window.netdashTopology, cy = t.cy;
        const hit = cy.$('.match'); if (hit.length !== 1 || hit.id() !== '{tile_id}' || cy.animated()) return false;
        const b = hit.renderedBoundingBox();
        return b.x1 >= 0 && b.y1 >= 0 && b.x2 <= cy.width() && b.y2 <= cy.height(); }}""", timeout=WAIT_MS)
    m = page.evaluate(MEASURE)
    assert m["minPx"] >= 11, m
    page.screenshot(path=str(artifacts / "topology-500-search.png"), full_page=True)

    # Expand that network on demand: its instances appear and its card overlaps no other network.
    page.evaluate(f"() => {{ window.netdashTopology.cy.getElementById('{tile_id}').emit('dbltap'); }}")
    page.wait_for_function(f"() => !window.netdashTopology.cy.getElementById('i{target.pk}').empty()",
                           timeout=WAIT_MS)
    overlaps = page.evaluate(f"""() => {{ const cy = window.netdashTopology.cy, card = cy.getElementById('{tile_id}');
        const a = card.boundingBox({{ includeLabels: false }});
        return cy.nodes('[kind="network"]').filter(n => n.id() !== '{tile_id}').filter(n => {{
          const b = n.boundingBox({{ includeLabels: false }});
          return b.x1 < a.x2 && a.x1 < b.x2 && b.y1 < a.y2 && a.y1 < b.y2; }}).map(n => n.id()); }}""")
    assert overlaps == []
    children = page.evaluate(f"() => window.netdashTopology.cy.getElementById('{tile_id}').children().length")
    assert children == 4 + 3  # its instances, DHCP namespace, subnet and the card's spacer
    page.fill("#live-search", "")

    # Drag a tile with the mouse, reload: it is where it was put (and its neighbours where the layout put them).
    page.click("[data-action=fit]")
    first = page.evaluate("() => window.netdashTopology.cy.nodes('[kind=\"network\"][?collapsed]')"
                          ".filter(n => { const b = n.renderedBoundingBox(); return b.x1 > 0 && b.y1 > 0; })[0].id()")
    page.evaluate(f"() => {{ const cy = window.netdashTopology.cy; cy.zoom(1); "
                  f"cy.center(cy.getElementById('{first}')); }}")
    start = _tile_on_screen(page, first)
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(start["x"] + 15 * step, start["y"] + 9 * step)
    page.mouse.up()
    moved = _tile_on_screen(page, first)["model"]
    assert moved["x"] - start["model"]["x"] > 100 and moved["y"] - start["model"]["y"] > 60, (start, moved)
    page.reload()
    wait_drawn(page)
    after = page.evaluate(f"() => window.netdashTopology.cy.getElementById('{first}').position()")
    assert (round(after["x"]), round(after["y"])) == (round(moved["x"]), round(moved["y"]))
    assert page.errors == []
