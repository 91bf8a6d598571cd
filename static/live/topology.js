/* netdash topology diagram: networks → subnets → DHCP namespace → instances, drawn with Cytoscape.js; routers
 * in a row above the cards, joined to the subnets they route and to their external network (a row above them),
 * each floating IP written under the instance it reaches.
 *
 * Layout is ours, not a force layout: networks sit on a grid of columns (one set of columns per tenant in the
 * isolation view), each a one-column tile when collapsed or a two-column card when expanded, stacked like masonry;
 * each child keeps the slot it was first given. So a delta never moves an existing node: new nodes appear in the
 * next free slot of their network, and a new network in the lowest columns. Expanding or collapsing one network
 * re-stacks its tenant's columns; Collapse all, Expand all and Tidy layout recompute every position.
 *
 * Readable at every size: the columns are planned so that the drawing has the canvas's shape, labels are drawn at
 * 11 px on screen or not at all, and the first view is the whole drawing if that is readable, else its top-left
 * at the readable zoom, with every network collapsed to a tile with its counts when expanded would need more
 * than a little panning (500 networks). Search zooms to the hit; nodes the user drags stay put across reloads.
 *
 * Rendering reconciles the model (NetdashLive.Store) into Cytoscape once per animation frame: a burst of
 * events costs one pass, and a resync snapshot only touches what changed.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;
  var config = L.readConfig('live-config');
  var container = document.getElementById('live-cy');
  if (!config || !container || !window.cytoscape) { return; }

  // Sizes in model units (1 unit = 1 px at zoom 1). Networks sit on a grid of columns PITCH_X wide: a collapsed
  // network is a tile of one column, an expanded one a card of CARD_SPAN columns (its widest label included).
  var COLS = 3;            // node columns inside a network card
  var COL_W = 130;         // horizontal spacing of nodes in a card
  var ROW_H = 74;          // vertical spacing of rows in a card
  var CARD_INSET_X = 78;   // card's top-left → its first node: padding plus half the widest label (the namespace)
  var CARD_INSET_Y = 57;   // padding, the network's label above the card, half the DHCP diamond
  var PITCH_X = 230;       // one grid column: a tile and the gap after it
  var GAP_Y = 34;          // between networks in a column
  var TILE_W = 200;
  var TILE_H = 64;
  var CARD_SPAN = 2;
  var GROUP_GAP = 70;      // between tenants in the isolation view
  var TENANT_PAD = 60;     // a tenant box's padding, both sides
  // Readability: a label is drawn at >= MIN_LABEL_PX on screen or not at all ('min-zoomed-font-size'), and the
  // first view never zooms below the zoom that shows every label. FONT is what the styles below use.
  var MIN_LABEL_PX = 11;
  var FONT = { dhcp: 11, node: 12, tile: 13, network: 14, tenant: 20 };
  var MAX_FIRST_ZOOM = 2;
  var FIT_PAD = 30;
  // The first view draws every network expanded if that needs at most ~1/LOD_SLACK² canvases at a readable zoom
  // (the user pans a little), else collapsed to tiles with counts (expand on demand).
  var LOD_SLACK = 0.6;

  var isAll = config.mode === 'all';
  var store = new L.Store(config);
  var collapsed = new Set();      // network ids shown as one node
  var layout = freshLayout();
  var firstSnapshot = true;
  var selectedId = null;
  var rendered = { count: 0, lastMs: 0, nodes: 0, snapshotMs: 0, firstLayoutMs: 0, firstDrawMs: 0 };
  var pending = false;

  function freshLayout() {
    return { anchors: new Map(), slots: new Map(), groups: new Map(), nextGroupX: 0, plan: new Map(),
      routers: new Map(), externals: new Map() };
  }

  var cy = window.cytoscape({
    container: container,
    minZoom: 0.03,
    maxZoom: 3,
    boxSelectionEnabled: false,
    textureOnViewport: true,
    hideEdgesOnViewport: true,
    style: [
      { selector: 'node', style: {
        'label': 'data(label)', 'font-size': FONT.node, 'color': '#1d2733', 'text-wrap': 'wrap',
        'text-valign': 'bottom', 'text-margin-y': 4, 'min-zoomed-font-size': MIN_LABEL_PX,
        'background-color': 'data(colour)', 'border-width': 1, 'border-color': '#334155',
        'width': 26, 'height': 26 } },
      { selector: 'node[kind="instance"]', style: { 'shape': 'ellipse', 'border-width': 1.5,
        'border-style': 'dashed', 'border-color': '#64748b' } },
      { selector: 'node[kind="instance"][?leased]', style: { 'border-width': 4, 'border-style': 'solid',
        'border-color': '#0f766e' } },
      { selector: 'node[kind="dhcp"]', style: { 'shape': 'diamond', 'width': 34, 'height': 34, 'font-size': FONT.dhcp,
        'font-family': 'ui-monospace, Menlo, Consolas, monospace' } },
      { selector: 'node[kind="subnet"]', style: { 'shape': 'round-rectangle', 'width': 96, 'height': 24,
        'background-color': '#e0ecff', 'border-color': '#2563eb', 'text-valign': 'center', 'text-margin-y': 0,
        'font-family': 'ui-monospace, Menlo, Consolas, monospace', 'font-size': FONT.node } },
      { selector: 'node[kind="subnet"][?shared]', style: { 'background-color': '#fef3c7', 'border-color': '#d97706',
        'border-width': 2 } },
      { selector: 'node[kind="network"]', style: {
        'shape': 'round-rectangle', 'background-color': '#ffffff', 'background-opacity': 0.9,
        'border-width': 3, 'border-color': 'data(colour)', 'text-valign': 'top', 'text-halign': 'center',
        'text-margin-y': -6, 'font-size': FONT.network, 'font-weight': 'bold', 'padding': 18,
        'width': 160, 'height': 56 } },
      { selector: 'node[kind="network"][?collapsed]', style: {
        'background-color': 'data(colour)', 'background-opacity': 0.35, 'text-valign': 'center',
        'text-margin-y': 0, 'font-size': FONT.tile, 'width': TILE_W, 'height': TILE_H, 'padding': 0,
        'text-max-width': TILE_W - 10 } },
      { selector: 'node[kind="tenant"]', style: {
        'shape': 'round-rectangle', 'background-color': '#eef2f7', 'background-opacity': 1,
        'border-width': 2, 'border-color': '#94a3b8', 'border-style': 'dashed', 'padding': TENANT_PAD / 2,
        'text-valign': 'top', 'text-margin-y': -8, 'font-size': FONT.tenant, 'font-weight': 'bold', 'color': '#0f172a' } },
      { selector: 'node[kind="spacer"]', style: { 'opacity': 0, 'events': 'no', 'width': 1, 'height': 1 } },
      { selector: 'edge', style: { 'width': 1.2, 'min-zoomed-font-size': MIN_LABEL_PX, 'line-color': '#94a3b8', 'curve-style': 'haystack',
        'haystack-radius': 0 } },
      { selector: 'edge[kind="serves"]', style: { 'line-style': 'dashed', 'line-color': '#2563eb' } },
      { selector: 'node[kind="router"]', style: { 'shape': 'hexagon', 'width': 40, 'height': 34 } },
      { selector: 'node[kind="external"]', style: { 'shape': 'round-rectangle', 'width': 150, 'height': 28,
        'background-color': '#f1f5f9', 'border-color': '#475569', 'border-width': 2, 'text-valign': 'center',
        'text-margin-y': 0 } },
      { selector: 'edge[kind="routes"]', style: { 'width': 2, 'line-color': '#7c3aed' } },
      { selector: 'edge[kind="gateway"]', style: { 'width': 2.5, 'line-color': '#475569', 'label': 'data(label)',
        'font-size': FONT.dhcp, 'font-family': 'ui-monospace, Menlo, Consolas, monospace', 'text-background-color': '#fff',
        'text-background-opacity': 1 } },
      { selector: '.faded', style: { 'opacity': 0.18 } },
      { selector: '.match', style: { 'underlay-color': '#facc15', 'underlay-opacity': 0.9, 'underlay-padding': 8,
        'z-index': 50 } },
      { selector: 'node:selected', style: { 'overlay-color': '#2563eb', 'overlay-opacity': 0.18,
        'overlay-padding': 6 } },
      { selector: '.flash', style: { 'underlay-color': '#38bdf8', 'underlay-opacity': 0.7, 'underlay-padding': 10 } }
    ]
  });

  // --- layout -------------------------------------------------------------------------------------------

  function groupKey(network) { return isAll ? network.tenant : 0; }

  function headerRows(nSubnets) { return Math.ceil((nSubnets + 1) / COLS); }

  /** Height of an expanded card with ``rows`` rows of nodes, its label above and the last row's labels inside. */
  function cardHeight(rows) { return CARD_INSET_Y + (Math.max(rows, 2) - 1) * ROW_H + 80; }

  function counts() {
    var perNet = new Map(), subs = new Map();
    store.instances.forEach(function (i) { perNet.set(i.network, (perNet.get(i.network) || 0) + 1); });
    store.subnets.forEach(function (s) { subs.set(s.network, (subs.get(s.network) || 0) + 1); });
    return { perNet: perNet, subs: subs };
  }

  /** What a network takes on the grid as it is drawn now: a one-column tile, or a card CARD_SPAN columns wide. */
  function footprint(id, c) {
    if (collapsed.has(id)) { return { span: 1, h: TILE_H }; }
    var rows = headerRows(c.subs.get(id) || 1) + Math.ceil((c.perNet.get(id) || 0) / COLS);
    return { span: CARD_SPAN, h: cardHeight(rows) };
  }

  /** Masonry: the leftmost run of ``span`` columns whose top is lowest, and that top. */
  function lowestRun(heights, span) {
    var best = { col: 0, y: Infinity };
    for (var col = 0; col + span <= heights.length; col++) {
      var y = heights[col];
      for (var k = 1; k < span; k++) { y = Math.max(y, heights[col + k]); }
      if (y < best.y) { best.col = col; best.y = y; }
    }
    return best;
  }

  function stack(heights, col, span, y, h) { for (var k = col; k < col + span; k++) { heights[k] = y + h + GAP_Y; } }

  /** Width and height of ``items`` (footprints) stacked by masonry into ``cols`` columns. */
  function packedSize(items, cols) {
    var heights = new Array(cols).fill(0), right = 0;
    items.forEach(function (f) {
      var span = Math.min(f.span, cols), r = lowestRun(heights, span);
      stack(heights, r.col, span, r.y, f.h);
      right = Math.max(right, r.col + span);
    });
    return { w: right * PITCH_X - (PITCH_X - TILE_W), h: Math.max.apply(null, heights) - GAP_Y };
  }

  /** Columns per group, chosen once per layout so that the drawing has the canvas's shape and so fills it at the
   * largest zoom: every total is tried, shared out between tenants by their area. Returns that zoom. */
  function planColumns(c) {
    var groups = new Map();
    store.networks.forEach(function (n) {
      var k = groupKey(n);
      if (!groups.has(k)) { groups.set(k, { items: [], area: 0, minCols: isAll ? 1 : 2 * CARD_SPAN }); }
      var g = groups.get(k), f = footprint(n.id, c);
      g.items.push(f);
      g.area += f.span * PITCH_X * (f.h + GAP_Y);
      g.minCols = Math.max(g.minCols, f.span);
    });
    layout.plan = new Map();
    if (!groups.size) { return 1; }
    var area = 0;
    groups.forEach(function (g) { area += g.area; });
    var cw = Math.max(200, container.clientWidth - 2 * FIT_PAD);
    var ch = Math.max(200, container.clientHeight - 2 * FIT_PAD) - (store.routers.size ? -EXTERNAL_ROW_Y : 0);
    var best = { zoom: 0, cols: new Map() };
    var most = 2 * Math.ceil(Math.sqrt(store.networks.size)) + 2 * CARD_SPAN * groups.size;
    for (var total = 1; total <= most; total++) {
      var cols = new Map(), w = 0, h = 0;
      groups.forEach(function (g, k) {
        var n = Math.max(g.minCols, Math.round(total * g.area / area));
        var size = packedSize(g.items, n);
        cols.set(k, n);
        w += size.w + (isAll ? TENANT_PAD + GROUP_GAP : 0);
        h = Math.max(h, size.h + (isAll ? TENANT_PAD + 2 * FONT.tenant : 0));
      });
      var zoom = Math.min(cw / w, Math.max(ch, 100) / h);
      if (zoom > best.zoom) { best = { zoom: zoom, cols: cols }; }
    }
    layout.plan = best.cols;
    return best.zoom;
  }

  function ensureGroup(key) {
    var g = layout.groups.get(key);
    if (g) { return g; }
    // Planned at the first draw (and by Tidy); a tenant that appears later gets two cards' width.
    var cols = layout.plan.get(key) || 2 * CARD_SPAN;
    g = { x: layout.nextGroupX, cols: cols, heights: new Array(cols).fill(0), order: [] };
    layout.nextGroupX += cols * PITCH_X + (isAll ? TENANT_PAD + GROUP_GAP : 0);
    layout.groups.set(key, g);
    return g;
  }

  /** Give a network an anchor once: the top-left of its tile or card, in the lowest columns of its group. */
  function ensureAnchor(network, c) {
    var a = layout.anchors.get(network.id);
    if (a) { return a; }
    var g = ensureGroup(groupKey(network));
    var f = footprint(network.id, c), span = Math.min(f.span, g.cols), r = lowestRun(g.heights, span);
    stack(g.heights, r.col, span, r.y, f.h);
    a = { x: g.x + r.col * PITCH_X, y: r.y, col: r.col };
    g.order.push(network.id);
    layout.anchors.set(network.id, a);
    layout.slots.set(network.id, { sub: new Map(), inst: new Map() });
    return a;
  }

  /** After a network changed size (expanded, collapsed), stack its group again in the order the networks were
   * placed, each in its column: the ones below make room or close up. Nodes the user moved stay put. */
  function reflow(g, c) {
    g.heights.fill(0);
    g.order = g.order.filter(function (id) { return store.networks.has(id); });
    g.order.forEach(function (id) {
      var a = layout.anchors.get(id), f = footprint(id, c), span = Math.min(f.span, g.cols);
      var col = Math.min(a.col, g.cols - span);
      var y = Math.max.apply(null, g.heights.slice(col, col + span));
      stack(g.heights, col, span, y, f.h);
      var dx = g.x + col * PITCH_X - a.x, dy = y - a.y;
      a.x += dx; a.y += dy; a.col = col;
      if (dx || dy) { shiftNetwork(id, dx, dy); }
    });
  }

  function shiftNetwork(id, dx, dy) {
    var n = cy.getElementById('n' + id);
    if (n.empty()) { return; }
    (n.isParent() ? n.descendants() : n).forEach(function (e) {
      if (e.isChildless() && !pins.has(e.id())) {
        var p = e.position();
        e.position({ x: p.x + dx, y: p.y + dy });
      }
    });
  }

  /** Lay everything out afresh for the current level of detail (Collapse all, Expand all, Tidy). */
  function replan() {
    layout = freshLayout();
    planColumns(counts());
    cy.elements().remove();
    reconcile();
    firstView();
  }

  /** Level of detail of the first draw: every network expanded if that drawing is readable after at most a
   * little panning (LOD_SLACK), else each a tile with its counts, expanded on demand. Plans the columns. */
  function chooseDetail() {
    layout = freshLayout();
    var c = counts();
    if (planColumns(c) < LOD_SLACK * MIN_LABEL_PX / FONT.dhcp) {
      store.networks.forEach(function (n) { collapsed.add(n.id); });
      planColumns(c);
    }
  }

  /** The lowest zoom at which every label on the graph is drawn at MIN_LABEL_PX or more. */
  function readableZoom() {
    var smallest = Infinity;
    cy.elements().forEach(function (e) {
      if (e.data('label')) { smallest = Math.min(smallest, e.pstyle('font-size').pfValue); }
    });
    return smallest === Infinity ? 1 : MIN_LABEL_PX / smallest;
  }

  /** Everything if it fits at a readable zoom (capped at MAX_FIRST_ZOOM, so a small graph is not blown up),
   * else the top-left of the drawing at the readable zoom, filling the canvas; search and panning find the rest. */
  function firstView() {
    cy.fit(undefined, FIT_PAD);
    var readable = readableZoom();
    if (cy.zoom() > MAX_FIRST_ZOOM) {
      cy.zoom(MAX_FIRST_ZOOM);
      cy.center();
    } else if (cy.zoom() < readable) {
      var bb = cy.elements().boundingBox();
      cy.zoom(readable);
      cy.pan({ x: FIT_PAD - bb.x1 * readable, y: FIT_PAD - bb.y1 * readable });
    }
  }

  /** Bring ``eles`` into view at a readable zoom: all of them if they fit, else the first. */
  function zoomTo(eles) {
    var readable = readableZoom(), bb = eles.boundingBox(), target = eles;
    var zoom = Math.min(MAX_FIRST_ZOOM, (container.clientWidth - 2 * FIT_PAD) / Math.max(bb.w, 1),
      (container.clientHeight - 2 * FIT_PAD) / Math.max(bb.h, 1));
    if (zoom < readable) { zoom = readable; target = eles.first(); }
    cy.stop();
    cy.animate({ zoom: zoom, center: { eles: target }, duration: 250 });
  }

  // --- positions the user chose -------------------------------------------------------------------------

  /** Where the user dragged nodes, kept in this browser's localStorage per view (a tenant's page, the isolation
   * view). Why there and not in the database: an arrangement is one person's way of reading the diagram, not
   * tenant state; kept server-side it would need a model and a write per drag, and the members of one tenant
   * would keep moving each other's boxes. Tidy layout forgets them. */
  var pins = (function () {
    var key = 'netdash.topology.v1.' + (isAll ? 'all' : 'tenant.' + config.tenant);
    var saved = {};
    try { saved = JSON.parse(window.localStorage.getItem(key) || '{}') || {}; } catch (e) { saved = {}; }
    function write() {
      try { window.localStorage.setItem(key, JSON.stringify(saved)); } catch (e) { /* full or disabled: not kept */ }
    }
    return {
      key: key,
      has: function (id) { return Object.prototype.hasOwnProperty.call(saved, id); },
      get: function (id) { var p = saved[id]; return p ? { x: p[0], y: p[1] } : null; },
      save: function (nodes) {
        nodes.forEach(function (n) { var p = n.position(); saved[n.id()] = [Math.round(p.x), Math.round(p.y)]; });
        write();
      },
      clear: function () { saved = {}; write(); }
    };
  }());

  function takeSlot(map, id) {
    if (map.has(id)) { return map.get(id); }
    var used = new Set(map.values());
    var k = 0;
    while (used.has(k)) { k += 1; }
    map.set(id, k);
    return k;
  }

  function freeSlots(map, live) { map.forEach(function (v, id) { if (!live.has(id)) { map.delete(id); } }); }

  // --- model → elements ---------------------------------------------------------------------------------

  function colour(status) { return L.STATUS_COLOURS[status] || '#94a3b8'; }

  function desiredElements() {
    var c = counts();
    var want = new Map();
    var subsByNet = new Map(), instByNet = new Map(), leasedIps = new Set();
    store.subnets.forEach(function (s) {
      if (!subsByNet.has(s.network)) { subsByNet.set(s.network, []); }
      subsByNet.get(s.network).push(s);
    });
    store.instances.forEach(function (i) {
      if (!instByNet.has(i.network)) { instByNet.set(i.network, []); }
      instByNet.get(i.network).push(i);
    });
    store.leases.forEach(function (l) { leasedIps.add(l.subnet + '|' + l.ip_address); });
    var fipOf = new Map();
    store.floatingIps.forEach(function (f) { if (f.instance) { fipOf.set(f.instance, f.address); } });
    // Isolation view: a CIDR used by more than one tenant is drawn in amber — same addresses, separate namespaces.
    var cidrTenants = new Map();
    if (isAll) {
      store.subnets.forEach(function (s) {
        var n = store.networks.get(s.network);
        if (!n) { return; }
        if (!cidrTenants.has(s.cidr)) { cidrTenants.set(s.cidr, new Set()); }
        cidrTenants.get(s.cidr).add(n.tenant);
      });
    }

    if (isAll) {
      store.tenants.forEach(function (t) {
        var g = ensureGroup(t.id);
        want.set('t' + t.id, { group: 'nodes', position: { x: g.x, y: 0 },
          data: { id: 't' + t.id, kind: 'tenant', label: t.name } });
      });
    }
    var networks = Array.from(store.networks.values()).sort(function (a, b) {
      return (a.tenant - b.tenant) || a.name.localeCompare(b.name) || (a.id - b.id);
    });
    networks.forEach(function (n) {
      var a = ensureAnchor(n, c);
      var slots = layout.slots.get(n.id);
      var subs = (subsByNet.get(n.id) || []).sort(function (x, y) { return x.id - y.id; });
      var insts = (instByNet.get(n.id) || []).sort(function (x, y) { return x.id - y.id; });
      freeSlots(slots.sub, new Set(subs.map(function (s) { return s.id; })));
      freeSlots(slots.inst, new Set(insts.map(function (i) { return i.id; })));
      var nid = 'n' + n.id;
      var isCollapsed = collapsed.has(n.id);
      var cidrs = subs.map(function (s) { return s.cidr; }).join(', ');
      var label = n.name + '  ·  ' + n.status;
      if (isCollapsed) {
        label = n.name + ' · ' + n.status + '\n' + (cidrs || 'no subnet') + '\n' + insts.length + ' instance' +
          (insts.length === 1 ? '' : 's');
      }
      var netNode = { group: 'nodes', data: { id: nid, kind: 'network', ref: n.id, label: label, status: n.status,
        colour: colour(n.status), collapsed: isCollapsed, parent: isAll ? 't' + n.tenant : undefined } };
      if (isCollapsed) { netNode.position = { x: a.x + TILE_W / 2, y: a.y + TILE_H / 2 }; }
      want.set(nid, netNode);
      if (isCollapsed) { return; }
      var x0 = a.x + CARD_INSET_X, y0 = a.y + CARD_INSET_Y;
      // An invisible node at the card's right edge: every card has the same width, so columns read as a grid.
      want.set('w' + n.id, { group: 'nodes', position: { x: x0 + (COLS - 1) * COL_W + CARD_INSET_X - 18, y: y0 }, data: {
        id: 'w' + n.id, kind: 'spacer', parent: nid, label: '', colour: '#fff', status: '' } });
      var did = 'd' + n.id;
      want.set(did, { group: 'nodes', position: { x: x0, y: y0 }, data: {
        id: did, kind: 'dhcp', ref: n.id, parent: nid, status: n.status, colour: colour(n.status),
        label: n.dhcp_namespace + '\ndnsmasq ' + n.status } });
      subs.forEach(function (s) {
        var k = takeSlot(slots.sub, s.id) + 1;
        var sid = 's' + s.id;
        want.set(sid, { group: 'nodes', position: { x: x0 + (k % COLS) * COL_W, y: y0 + Math.floor(k / COLS) * ROW_H },
          data: { id: sid, kind: 'subnet', ref: s.id, parent: nid, label: s.cidr, colour: '#e0ecff', status: '',
            shared: (cidrTenants.get(s.cidr) || new Set()).size > 1 } });
        if (s.enable_dhcp) {
          want.set('e' + did + sid, { group: 'edges', data: { id: 'e' + did + sid, kind: 'serves', source: did,
            target: sid } });
        }
      });
      var hr = headerRows(subs.length);
      insts.forEach(function (i) {
        var k = takeSlot(slots.inst, i.id);
        var iid = 'i' + i.id;
        want.set(iid, { group: 'nodes', position: { x: x0 + (k % COLS) * COL_W,
          y: y0 + (hr + Math.floor(k / COLS)) * ROW_H },
        data: { id: iid, kind: 'instance', ref: i.id, parent: nid, status: i.status, colour: colour(i.status),
          leased: leasedIps.has(i.subnet + '|' + i.ip_address),
          label: i.hostname + '\n' + (i.ip_address || 'no IP') + (fipOf.has(i.id) ? '\nFIP ' + fipOf.get(i.id) : '')
        } });
        if (store.subnets.has(i.subnet)) {
          want.set('es' + i.subnet + iid, { group: 'edges', data: { id: 'es' + i.subnet + iid, kind: 'attached',
            source: 's' + i.subnet, target: iid } });
        }
      });
    });
    addRouters(want);
    addNodes(want);
    return want;
  }

  var ROUTER_ROW_Y = -170;   // routers above the network cards, their external networks above them
  var EXTERNAL_ROW_Y = -330;
  var ROUTER_GAP_X = 190;

  /** Routers between the subnets they route (or the collapsed network card) and their external network. */
  function addRouters(want) {
    var routers = Array.from(store.routers.values());
    freeSlots(layout.routers, new Set(routers.map(function (r) { return r.id; })));
    var used = new Set();
    routers.forEach(function (r) { if (r.external_network) { used.add(r.external_network); } });
    freeSlots(layout.externals, used);
    routers.sort(function (a, b) { return a.id - b.id; }).forEach(function (r) {
      var rid = 'r' + r.id;
      want.set(rid, { group: 'nodes', position: { x: takeSlot(layout.routers, r.id) * ROUTER_GAP_X, y: ROUTER_ROW_Y },
        data: { id: rid, kind: 'router', ref: r.id, status: r.status, colour: colour(r.status),
          label: r.name + ' · ' + r.status } });
      (r.subnets || []).forEach(function (subnetId) {
        var s = store.subnets.get(subnetId);
        if (!s) { return; }
        var target = want.has('s' + subnetId) ? 's' + subnetId : 'n' + s.network;
        if (!want.has(target)) { return; }
        want.set('er' + r.id + target, { group: 'edges', data: { id: 'er' + r.id + target, kind: 'routes',
          source: rid, target: target } });
      });
      if (!r.external_network) { return; }
      var xid = want.has('n' + r.external_network) ? 'n' + r.external_network : 'x' + r.external_network;
      if (xid[0] === 'x' && !want.has(xid)) {
        var ext = store.externals.get(r.external_network) || { name: 'external ' + r.external_network };
        want.set(xid, { group: 'nodes', position: {
          x: takeSlot(layout.externals, r.external_network) * ROUTER_GAP_X * 2, y: EXTERNAL_ROW_Y },
        data: { id: xid, kind: 'external', ref: r.external_network, status: '', colour: '#f1f5f9',
          label: ext.name + ' (external)' } });
      }
      want.set('eg' + r.id, { group: 'edges', data: { id: 'eg' + r.id, kind: 'gateway', source: rid, target: xid,
        label: r.external_ip || '' } });
    });
  }

  // --- nodes and tunnels (issue 13): which node holds each namespace, and the VXLAN between nodes -----------

  var HOST_ROW_Y = -490;     // the nodes, above the external networks
  var HOST_GAP_X = 260;
  var hostSlots = new Map(); // node name → slot: a node keeps its place, like every other element
  var NODE_COLOURS = { live: '#16a34a', draining: '#7c3aed', down: '#dc2626' };
  cy.style()
    .selector('node[kind="host"]').style({ 'shape': 'rectangle', 'width': 120, 'height': 30, 'text-valign': 'center',
      'text-margin-y': 0, 'color': '#fff', 'font-weight': 'bold', 'font-family': 'ui-monospace, Menlo, Consolas, monospace' })
    .selector('edge[kind="tunnel"]').style({ 'width': 3, 'line-color': '#0891b2', 'line-style': 'dotted',
      'curve-style': 'bezier', 'label': 'data(label)', 'font-size': 9, 'text-background-color': '#fff',
      'text-background-opacity': 1 })
    .update();

  /** Every node each network is on: its DHCP servers' nodes (first first), then its instances' nodes. */
  function networkNodes() {
    var on = new Map();
    function add(networkId, name) {
      if (!name) { return; }
      if (!on.has(networkId)) { on.set(networkId, []); }
      if (on.get(networkId).indexOf(name) === -1) { on.get(networkId).push(name); }
    }
    store.networks.forEach(function (n) {
      var servers = store.dhcpServers.get(n.id);
      if (servers && servers.length) { servers.forEach(function (d) { add(n.id, d.node); }); } else { add(n.id, n.node); }
    });
    store.instances.forEach(function (i) { add(i.network, i.node); });
    return on;
  }

  function nodeLabel(name) {
    var n = store.nodes.get(name);
    return name + (n && n.state !== 'live' ? ' (' + (n.state === 'down' ? 'node down' : n.state) + ')' : '');
  }

  /** A node per host, a tunnel edge (with the VNIs it carries) between each pair of nodes sharing a network, and
   * each DHCP namespace and instance labelled with the node it is on. */
  function addNodes(want) {
    var on = networkNodes();
    var names = new Set(), tunnels = new Map();
    on.forEach(function (list, networkId) {
      list.forEach(function (a) { names.add(a); });
      var n = store.networks.get(networkId);
      list.slice().sort().forEach(function (a, k, sorted) {
        sorted.slice(k + 1).forEach(function (b) {
          var key = a + '|' + b;
          if (!tunnels.has(key)) { tunnels.set(key, []); }
          tunnels.get(key).push(n && n.vni !== undefined && n.vni !== null ? n.vni : networkId);
        });
      });
    });
    // One node alone carries no tunnel: drawing it would only repeat what every label says.
    if (names.size < 2) { return; }
    freeSlots(hostSlots, names);
    Array.from(names).sort().forEach(function (name) {
      var state = (store.nodes.get(name) || {}).state || '';
      want.set('h' + name, { group: 'nodes', position: { x: takeSlot(hostSlots, name) * HOST_GAP_X, y: HOST_ROW_Y },
        data: { id: 'h' + name, kind: 'host', ref: name, status: state, colour: NODE_COLOURS[state] || '#64748b',
          label: nodeLabel(name) } });
    });
    tunnels.forEach(function (vnis, key) {
      var ends = key.split('|');
      want.set('et' + key, { group: 'edges', data: { id: 'et' + key, kind: 'tunnel', source: 'h' + ends[0],
        target: 'h' + ends[1], label: 'VXLAN ' + vnis.sort(function (x, y) { return x - y; }).join(', '),
        vnis: vnis.join(',') } });
    });
    store.networks.forEach(function (n) {
      var d = want.get('d' + n.id);
      var servers = store.dhcpServers.get(n.id) || [];
      if (d && servers.length) {
        d.data.label += '\non ' + servers.map(function (sv) {
          return nodeLabel(sv.node) + (sv.rank === 0 ? '' : ' standby');
        }).join(', ');
      }
    });
    store.instances.forEach(function (i) {
      var e = want.get('i' + i.id);
      if (e && i.node) { e.data.label += '\n@ ' + nodeLabel(i.node); }
    });
  }

  function sameData(a, b) {
    var keys = Object.keys(b);
    for (var k = 0; k < keys.length; k++) {
      if (keys[k] !== 'parent' && a[keys[k]] !== b[keys[k]]) { return false; }
    }
    return true;
  }

  /** Make the graph match the model: add missing, remove gone, patch changed data. Positions stay. */
  function reconcile() {
    pending = false;
    var t0 = performance.now();
    var want = desiredElements();
    var changedIds = [];
    cy.batch(function () {
      // Remove first (children before the elements that may become their replacement parents).
      cy.elements().forEach(function (ele) {
        var w = want.get(ele.id());
        if (!w) { ele.remove(); return; }
        var parentNow = ele.isNode() ? (ele.data('parent') || undefined) : undefined;
        if (ele.isNode() && (w.data.parent || undefined) !== parentNow) { ele.remove(); }
      });
      var toAdd = [];
      want.forEach(function (w, id) {
        var ele = cy.getElementById(id);
        if (ele.empty()) {
          if (w.group === 'nodes' && pins.has(id)) { w.position = pins.get(id); }
          toAdd.push(w);
        } else if (!sameData(ele.data(), w.data)) {
          var data = Object.assign({}, w.data);
          delete data.parent;
          ele.data(data);
          changedIds.push(id);
          if (w.data.kind === 'network' && w.data.collapsed && w.position) { ele.position(pins.get(id) || w.position); }
        }
      });
      // Parents before children, nodes before edges.
      var rank = { tenant: 0, network: 1, dhcp: 2, subnet: 2, instance: 2, spacer: 2 };
      toAdd.sort(function (a, b) {
        var ra = a.group === 'edges' ? 9 : rank[a.data.kind], rb = b.group === 'edges' ? 9 : rank[b.data.kind];
        return ra - rb;
      });
      if (toAdd.length) { cy.add(toAdd); }
    });
    if (!firstRender()) {
      changedIds.forEach(function (id) { flash(cy.getElementById(id)); });
    }
    rendered.count += 1;
    rendered.lastMs = performance.now() - t0;
    rendered.nodes = cy.nodes().length;
    container.dataset.rendered = String(rendered.count);
    container.dataset.nodes = String(rendered.nodes);
    updateCounts();
    if (selectedId) { showDetails(selectedId); }
    applySearch(false);
  }

  var renderedOnce = false;
  function firstRender() { var was = renderedOnce; renderedOnce = true; return !was; }

  function flash(ele) {
    if (ele.empty()) { return; }
    ele.addClass('flash');
    window.setTimeout(function () { ele.removeClass('flash'); }, 900);
  }

  function schedule() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(reconcile);
  }

  // --- socket ---------------------------------------------------------------------------------------------

  function onSnapshot(snap) {
    if (firstSnapshot) { rendered.snapshotMs = performance.now(); }  // navigation → first snapshot parsed
    store.loadSnapshot(snap);
    if (firstSnapshot) {
      firstSnapshot = false;
      var t0 = performance.now();
      chooseDetail();
      reconcile();
      firstView();
      rendered.firstLayoutMs = performance.now() - t0;  // plan, build and view; what is left to firstDrawMs is paint
      // Navigation → the frame that shows it (the bench's first-draw figure): after the next paint.
      window.requestAnimationFrame(function () {
        window.setTimeout(function () { rendered.firstDrawMs = performance.now(); }, 0);
      });
    } else {
      reconcile();
    }
  }

  function onEvent(msg) { if (store.applyEvent(msg)) { schedule(); } }

  var statusEl = document.getElementById('live-status');
  var socket = new L.LiveSocket(config.ws_path, {
    snapshot: onSnapshot, event: onEvent,
    status: function (state, text) {
      if (!statusEl) { return; }
      statusEl.className = 'live-status ' + state;
      statusEl.textContent = text;
    }
  });

  // --- interaction --------------------------------------------------------------------------------------

  var details = document.getElementById('live-details');
  var tooltip = document.getElementById('live-tooltip');

  function row(k, v, mono) {
    return '<tr><th>' + L.esc(k) + '</th><td' + (mono ? ' class="mono"' : '') + '>' + L.esc(v) + '</td></tr>';
  }
  function badge(status) { return '<span class="badge ' + L.esc(status) + '">' + L.esc(status) + '</span>'; }
  function link(href, text) { return href ? '<a href="' + L.esc(href) + '">' + L.esc(text) + '</a>' : ''; }

  function describe(id) {
    var ele = cy.getElementById(id);
    if (ele.empty()) { return null; }
    var kind = ele.data('kind'), ref = ele.data('ref');
    var html = '', title = '';
    if (kind === 'network' || kind === 'dhcp') {
      var n = store.networks.get(ref);
      if (!n) { return null; }
      var tenant = store.tenants.get(n.tenant);
      title = kind === 'dhcp' ? 'DHCP namespace' : 'Network ' + n.name;
      html = '<table>' + row('network', n.name) + (tenant ? row('tenant', tenant.name) : '') +
        '<tr><th>status</th><td>' + badge(n.status) + '</td></tr>' +
        (n.status_reason ? row('reason', n.status_reason) : '') + row('DHCP namespace', n.dhcp_namespace, true) +
        row('dnsmasq', n.status === 'active' ? 'running' : n.status) + row('node', n.node || '—') +
        row('kernel id', n.kernel_id, true) + '</table><p>' + link(n.url, 'Network details →') + ' ' +
        (kind === 'network' ? '<button type="button" class="btn secondary" data-toggle="' + n.id + '">' +
          (collapsed.has(n.id) ? 'Expand' : 'Collapse') + '</button>' : '') + '</p>';
    } else if (kind === 'router') {
      var r = store.routers.get(ref);
      if (!r) { return null; }
      var ext = store.externals.get(r.external_network) || store.networks.get(r.external_network);
      title = 'Router ' + r.name;
      html = '<table>' + row('router', r.name) + '<tr><th>status</th><td>' + badge(r.status) + '</td></tr>' +
        (r.status_reason ? row('reason', r.status_reason) : '') +
        row('external network', ext ? ext.name : '—') + row('external address', r.external_ip || '—', true) +
        row('subnets', (r.subnets || []).map(function (id) { var sn = store.subnets.get(id); return sn ? sn.cidr : id; })
          .join(', ') || '—', true) + row('kernel id', r.kernel_id, true) + '</table><p>' +
        link(r.url, 'Router details →') + '</p>';
    } else if (kind === 'subnet') {
      var s = store.subnets.get(ref);
      if (!s) { return null; }
      var nActive = 0;
      store.leases.forEach(function (l) { if (l.subnet === s.id) { nActive += 1; } });
      title = 'Subnet ' + s.cidr;
      html = '<table>' + row('CIDR', s.cidr, true) + row('gateway', s.gateway || 'none', true) +
        row('DHCP server', s.dhcp_address, true) +
        row('pools', (s.pools || []).map(function (p) { return p[0] + '–' + p[1]; }).join(', '), true) +
        row('DHCP', s.enable_dhcp ? 'on, lease ' + s.lease_seconds + ' s' : 'off') +
        row('active leases', nActive) + sharedRow(s) + '</table><p>' +
        link(L.fill(store.urls.subnet_leases, { id: s.id }), 'Addresses and leases →') + '</p>';
    } else if (kind === 'instance') {
      var i = store.instances.get(ref);
      if (!i) { return null; }
      var lease = store.leaseFor(i.subnet, i.ip_address);
      title = 'Instance ' + i.hostname;
      html = '<table>' + row('hostname', i.hostname) + row('IP', (i.ip_address || 'none') +
        (i.fixed_ip ? ' (fixed)' : ''), true) + row('MAC', i.mac_address, true) +
        row('namespace', i.namespace, true) + '<tr><th>status</th><td>' + badge(i.status) + '</td></tr>' +
        (i.status_reason ? row('reason', i.status_reason) : '') +
        row('lease', lease ? 'active, expires ' + (lease.expires_at ?
          'in ' + L.countdown((Date.parse(lease.expires_at) - Date.now()) / 1000) : 'never') : 'none') +
        '</table><p>' + link(i.url, 'Instance details →') + ' ' +
        link(L.fill(store.urls.subnet_leases, { id: i.subnet }), 'Subnet leases →') + '</p>';
    } else if (kind === 'tenant') {
      var t = store.tenants.get(Number(id.slice(1)));
      if (!t) { return null; }
      title = 'Tenant ' + t.name;
      html = '<p>' + link(L.fill(store.urls.tenant_topology, { id: t.id }), 'Open this tenant’s topology →') + '</p>';
    }
    return { title: title, html: html };
  }

  function sharedRow(s) {
    var others = [];
    store.subnets.forEach(function (o) {
      var n = store.networks.get(o.network), mine = store.networks.get(s.network);
      if (o.id !== s.id && o.cidr === s.cidr && n && mine && n.tenant !== mine.tenant) {
        var t = store.tenants.get(n.tenant);
        others.push((t ? t.name : 'tenant ' + n.tenant) + ' (' + n.dhcp_namespace + ')');
      }
    });
    return others.length ? row('same CIDR also in', others.join(', ')) : '';
  }

  function showDetails(id) {
    var d = describe(id);
    if (!d) { details.innerHTML = '<p class="muted">Gone.</p>'; selectedId = null; return; }
    selectedId = id;
    details.innerHTML = '<h3>' + L.esc(d.title) + '</h3>' + d.html;
  }

  function toggle(networkId) {
    if (collapsed.has(networkId)) { collapsed.delete(networkId); } else { collapsed.add(networkId); }
    var n = store.networks.get(networkId), g = n && layout.groups.get(groupKey(n));
    if (g) { reflow(g, counts()); }
    reconcile();
  }

  details.addEventListener('click', function (ev) {
    var t = ev.target.closest('[data-toggle]');
    if (t) { toggle(Number(t.dataset.toggle)); }
  });

  cy.on('tap', 'node', function (ev) { showDetails(ev.target.id()); });
  cy.on('dbltap', 'node[kind="network"]', function (ev) { toggle(ev.target.data('ref')); });
  cy.on('dragfree', 'node', function (ev) {
    var n = ev.target;
    pins.save(n.isParent() ? n.descendants().filter(function (d) { return d.isChildless(); }) : n);
  });
  cy.on('mouseover', 'node', function (ev) {
    var d = describe(ev.target.id());
    if (!d) { return; }
    var p = ev.renderedPosition || ev.target.renderedPosition();
    tooltip.innerHTML = '<strong>' + L.esc(d.title) + '</strong>' + d.html.replace(/<p>.*<\/p>$/, '');
    tooltip.style.left = (p.x + 16) + 'px';
    tooltip.style.top = (p.y + 16) + 'px';
    tooltip.hidden = false;
  });
  cy.on('mouseout', 'node', function () { tooltip.hidden = true; });
  cy.on('viewport', function () { tooltip.hidden = true; });

  // --- search -------------------------------------------------------------------------------------------

  var search = document.getElementById('live-search');
  var searchCount = document.getElementById('live-search-count');
  var matchIndex = 0;

  function matchIds(q) {
    var ids = new Set();
    function hit() {
      for (var k = 0; k < arguments.length; k++) {
        if (arguments[k] && String(arguments[k]).toLowerCase().indexOf(q) !== -1) { return true; }
      }
      return false;
    }
    store.networks.forEach(function (n) {
      if (hit(n.name, n.dhcp_namespace, n.kernel_id)) { ids.add(collapsed.has(n.id) ? 'n' + n.id : 'd' + n.id); }
    });
    store.subnets.forEach(function (s) {
      if (hit(s.cidr, s.name, s.gateway, s.dhcp_address)) { ids.add(collapsed.has(s.network) ? 'n' + s.network : 's' + s.id); }
    });
    store.instances.forEach(function (i) {
      if (hit(i.hostname, i.ip_address, i.mac_address, i.namespace)) {
        ids.add(collapsed.has(i.network) ? 'n' + i.network : 'i' + i.id);
      }
    });
    return ids;
  }

  function applySearch(centre) {
    var q = (search.value || '').trim().toLowerCase();
    cy.batch(function () {
      cy.elements().removeClass('faded match');
      if (!q) { return; }
      var ids = matchIds(q);
      var hits = cy.collection();
      ids.forEach(function (id) { hits = hits.union(cy.getElementById(id)); });
      cy.elements().addClass('faded');
      hits.removeClass('faded').addClass('match');
      hits.ancestors().removeClass('faded');
    });
    var hits = cy.$('.match');
    searchCount.textContent = q ? hits.length + ' match' + (hits.length === 1 ? '' : 'es') : '';
    if (centre && hits.length) { zoomTo(hits); }
  }

  var searchTimer = null;
  search.addEventListener('input', function () {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(function () { matchIndex = 0; applySearch(true); }, 150);
  });
  search.addEventListener('keydown', function (ev) {
    if (ev.key !== 'Enter') { return; }
    ev.preventDefault();
    var hits = cy.$('.match');
    if (!hits.length) { return; }
    var ele = hits[matchIndex % hits.length];
    matchIndex += 1;
    zoomTo(ele);
    showDetails(ele.id());
  });

  // --- toolbar ------------------------------------------------------------------------------------------

  var countsEl = document.getElementById('live-counts');
  function updateCounts() {
    if (!countsEl) { return; }
    countsEl.textContent = store.networks.size + ' networks · ' + store.subnets.size + ' subnets · ' +
      store.instances.size + ' instances · ' + store.leases.size + ' active leases';
  }

  document.querySelector('.live-toolbar').addEventListener('click', function (ev) {
    var b = ev.target.closest('[data-action]');
    if (!b) { return; }
    var action = b.dataset.action;
    if (action === 'fit') {
      cy.fit(undefined, FIT_PAD);
    } else if (action === 'collapse-all') {
      store.networks.forEach(function (n) { collapsed.add(n.id); });
      replan();
    } else if (action === 'expand-all') {
      collapsed.clear();
      replan();
    } else if (action === 'tidy') {
      pins.clear();
      replan();
    }
  });

  var switcher = document.getElementById('live-tenant-switch');
  if (switcher) { switcher.addEventListener('change', function () { window.location.href = switcher.value; }); }

  // For tests and the benchmark: the graph, the model, render figures, and a way to draw without a socket.
  window.netdashTopology = {
    cy: cy, store: store, socket: socket, rendered: rendered, collapsed: collapsed, pins: pins,
    readableZoom: readableZoom, minLabelPx: MIN_LABEL_PX,
    renderSnapshot: function (snap) {
      var t0 = performance.now();
      onSnapshot(snap);
      return performance.now() - t0;
    }
  };
  if (config.ws_path) { socket.start(); }
}());
