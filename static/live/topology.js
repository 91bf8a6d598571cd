/* netdash topology diagram: networks → subnets → DHCP namespace → instances, drawn with Cytoscape.js; routers
 * in a row above the cards, joined to the subnets they route and to their external network (a row above them),
 * each floating IP written under the instance it reaches.
 *
 * Layout is ours, not a force layout: each network is a card at a fixed anchor (masonry columns, one set of
 * columns per tenant in the isolation view) and each child keeps the slot it was first given. So a delta
 * never moves an existing node: new nodes appear in the next free slot of their network, and a new network in
 * the shortest column. "Tidy layout" is the only thing that recomputes every position.
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

  var COLS = 4;            // instance columns inside a network card
  var COL_W = 118;         // horizontal spacing of nodes in a card
  var ROW_H = 78;          // vertical spacing of rows in a card
  var CARD_GAP_X = 90;
  var CARD_GAP_Y = 110;
  var GROUP_GAP = 160;     // between tenants in the isolation view
  var AUTO_COLLAPSE_INSTANCES = 400;
  var CARD_W = COLS * COL_W;

  var isAll = config.mode === 'all';
  var store = new L.Store(config);
  var collapsed = new Set();      // network ids shown as one node
  var layout = freshLayout();
  var firstSnapshot = true;
  var selectedId = null;
  var rendered = { count: 0, lastMs: 0, nodes: 0 };
  var pending = false;

  function freshLayout() {
    return { anchors: new Map(), slots: new Map(), groups: new Map(), nextGroupX: 0, groupOrder: [],
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
        'label': 'data(label)', 'font-size': 10, 'color': '#1d2733', 'text-wrap': 'wrap',
        'text-valign': 'bottom', 'text-margin-y': 4, 'min-zoomed-font-size': 7,
        'background-color': 'data(colour)', 'border-width': 1, 'border-color': '#334155',
        'width': 26, 'height': 26 } },
      { selector: 'node[kind="instance"]', style: { 'shape': 'ellipse', 'border-width': 1.5,
        'border-style': 'dashed', 'border-color': '#64748b' } },
      { selector: 'node[kind="instance"][?leased]', style: { 'border-width': 4, 'border-style': 'solid',
        'border-color': '#0f766e' } },
      { selector: 'node[kind="dhcp"]', style: { 'shape': 'diamond', 'width': 34, 'height': 34,
        'font-family': 'ui-monospace, Menlo, Consolas, monospace' } },
      { selector: 'node[kind="subnet"]', style: { 'shape': 'round-rectangle', 'width': 96, 'height': 24,
        'background-color': '#e0ecff', 'border-color': '#2563eb', 'text-valign': 'center', 'text-margin-y': 0,
        'font-family': 'ui-monospace, Menlo, Consolas, monospace', 'font-size': 10.5 } },
      { selector: 'node[kind="subnet"][?shared]', style: { 'background-color': '#fef3c7', 'border-color': '#d97706',
        'border-width': 2 } },
      { selector: 'node[kind="network"]', style: {
        'shape': 'round-rectangle', 'background-color': '#ffffff', 'background-opacity': 0.9,
        'border-width': 3, 'border-color': 'data(colour)', 'text-valign': 'top', 'text-halign': 'center',
        'text-margin-y': -6, 'font-size': 13, 'font-weight': 'bold', 'padding': 18,
        'width': 160, 'height': 56 } },
      { selector: 'node[kind="network"][?collapsed]', style: {
        'background-color': 'data(colour)', 'background-opacity': 0.35, 'text-valign': 'center',
        'text-margin-y': 0, 'font-size': 12, 'width': 230, 'height': 64 } },
      { selector: 'node[kind="tenant"]', style: {
        'shape': 'round-rectangle', 'background-color': '#eef2f7', 'background-opacity': 1,
        'border-width': 2, 'border-color': '#94a3b8', 'border-style': 'dashed', 'padding': 30,
        'text-valign': 'top', 'text-margin-y': -8, 'font-size': 20, 'font-weight': 'bold', 'color': '#0f172a' } },
      { selector: 'node[kind="spacer"]', style: { 'opacity': 0, 'events': 'no', 'width': 1, 'height': 1 } },
      { selector: 'edge', style: { 'width': 1.2, 'line-color': '#94a3b8', 'curve-style': 'haystack',
        'haystack-radius': 0 } },
      { selector: 'edge[kind="serves"]', style: { 'line-style': 'dashed', 'line-color': '#2563eb' } },
      { selector: 'node[kind="router"]', style: { 'shape': 'hexagon', 'width': 40, 'height': 34 } },
      { selector: 'node[kind="external"]', style: { 'shape': 'round-rectangle', 'width': 150, 'height': 28,
        'background-color': '#f1f5f9', 'border-color': '#475569', 'border-width': 2, 'text-valign': 'center',
        'text-margin-y': 0 } },
      { selector: 'edge[kind="routes"]', style: { 'width': 2, 'line-color': '#7c3aed' } },
      { selector: 'edge[kind="gateway"]', style: { 'width': 2.5, 'line-color': '#475569', 'label': 'data(label)',
        'font-size': 9, 'font-family': 'ui-monospace, Menlo, Consolas, monospace', 'text-background-color': '#fff',
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

  function cardHeight(rows) { return rows * ROW_H + 40; }

  function headerRows(nSubnets) { return Math.ceil((nSubnets + 1) / COLS); }

  /** Number of columns for a group, chosen once (when the group first appears) so the whole reads square. */
  function columnsFor(nNetworks) {
    var avgH = cardHeight(3) + CARD_GAP_Y;
    return Math.max(1, Math.ceil(Math.sqrt(nNetworks * avgH / (CARD_W + CARD_GAP_X)) * 1.2));
  }

  function ensureGroup(key, sizeHint) {
    var g = layout.groups.get(key);
    if (g) { return g; }
    // A tenant page starts with at least 3 columns so networks created later fill across, not downwards.
    var cols = isAll ? Math.min(3, columnsFor(sizeHint || 1)) : Math.max(3, columnsFor(sizeHint || 1));
    g = { x: layout.nextGroupX, cols: cols, heights: new Array(cols).fill(0) };
    layout.nextGroupX += cols * (CARD_W + CARD_GAP_X) + GROUP_GAP;
    layout.groups.set(key, g);
    return g;
  }

  function counts() {
    var perNet = new Map(), subs = new Map(), perGroup = new Map();
    store.instances.forEach(function (i) { perNet.set(i.network, (perNet.get(i.network) || 0) + 1); });
    store.subnets.forEach(function (s) { subs.set(s.network, (subs.get(s.network) || 0) + 1); });
    store.networks.forEach(function (n) { var k = groupKey(n); perGroup.set(k, (perGroup.get(k) || 0) + 1); });
    return { perNet: perNet, subs: subs, perGroup: perGroup };
  }

  /** Give a network an anchor once: the top-left of its card in the shortest column of its group. */
  function ensureAnchor(network, c) {
    var a = layout.anchors.get(network.id);
    if (a) { return a; }
    var g = ensureGroup(groupKey(network), c.perGroup.get(groupKey(network)));
    var col = 0;
    for (var k = 1; k < g.cols; k++) { if (g.heights[k] < g.heights[col]) { col = k; } }
    var rows = headerRows(c.subs.get(network.id) || 1) + Math.ceil((c.perNet.get(network.id) || 0) / COLS);
    a = { x: g.x + col * (CARD_W + CARD_GAP_X), y: g.heights[col], col: col, group: g };
    g.heights[col] += cardHeight(Math.max(rows, 2)) + CARD_GAP_Y;
    layout.anchors.set(network.id, a);
    layout.slots.set(network.id, { sub: new Map(), inst: new Map() });
    return a;
  }

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
        var g = ensureGroup(t.id, c.perGroup.get(t.id));
        want.set('t' + t.id, { group: 'nodes', position: { x: g.x + CARD_W / 2, y: 0 },
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
      if (isCollapsed) { netNode.position = { x: a.x + CARD_W / 2, y: a.y + 40 }; }
      want.set(nid, netNode);
      if (isCollapsed) { return; }
      // An invisible node at the card's right edge: every card has the same width, so columns read as a grid.
      want.set('w' + n.id, { group: 'nodes', position: { x: a.x + (COLS - 1) * COL_W + 20, y: a.y }, data: {
        id: 'w' + n.id, kind: 'spacer', parent: nid, label: '', colour: '#fff', status: '' } });
      var did = 'd' + n.id;
      want.set(did, { group: 'nodes', position: { x: a.x, y: a.y }, data: {
        id: did, kind: 'dhcp', ref: n.id, parent: nid, status: n.status, colour: colour(n.status),
        label: n.dhcp_namespace + '\ndnsmasq ' + n.status } });
      subs.forEach(function (s) {
        var k = takeSlot(slots.sub, s.id) + 1;
        var sid = 's' + s.id;
        want.set(sid, { group: 'nodes', position: { x: a.x + (k % COLS) * COL_W + 20, y: a.y + Math.floor(k / COLS) * ROW_H },
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
        want.set(iid, { group: 'nodes', position: { x: a.x + (k % COLS) * COL_W,
          y: a.y + (hr + Math.floor(k / COLS)) * ROW_H },
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
          toAdd.push(w);
        } else if (!sameData(ele.data(), w.data)) {
          var data = Object.assign({}, w.data);
          delete data.parent;
          ele.data(data);
          changedIds.push(id);
          if (w.data.kind === 'network' && w.data.collapsed && w.position) { ele.position(w.position); }
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
    store.loadSnapshot(snap);
    if (firstSnapshot) {
      firstSnapshot = false;
      if (store.instances.size > AUTO_COLLAPSE_INSTANCES) {
        store.networks.forEach(function (n) { collapsed.add(n.id); });
      }
      reconcile();
      cy.fit(undefined, 40);
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
    reconcile();
  }

  details.addEventListener('click', function (ev) {
    var t = ev.target.closest('[data-toggle]');
    if (t) { toggle(Number(t.dataset.toggle)); }
  });

  cy.on('tap', 'node', function (ev) { showDetails(ev.target.id()); });
  cy.on('dbltap', 'node[kind="network"]', function (ev) { toggle(ev.target.data('ref')); });
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
    if (centre && hits.length) {
      cy.stop();
      cy.animate({ fit: { eles: hits, padding: 120 }, duration: 250 });
      if (cy.zoom() > 1.6) { cy.zoom(1.6); }
    }
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
    cy.animate({ center: { eles: ele }, zoom: 1.4, duration: 250 });
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
      cy.fit(undefined, 40);
    } else if (action === 'collapse-all') {
      store.networks.forEach(function (n) { collapsed.add(n.id); });
      reconcile();
    } else if (action === 'expand-all') {
      collapsed.clear();
      reconcile();
    } else if (action === 'tidy') {
      layout = freshLayout();
      cy.elements().remove();
      reconcile();
      cy.fit(undefined, 40);
    }
  });

  var switcher = document.getElementById('live-tenant-switch');
  if (switcher) { switcher.addEventListener('change', function () { window.location.href = switcher.value; }); }

  // For tests and the benchmark: the graph, the model, render figures, and a way to draw without a socket.
  window.netdashTopology = {
    cy: cy, store: store, socket: socket, rendered: rendered, collapsed: collapsed,
    renderSnapshot: function (snap) {
      var t0 = performance.now();
      onSnapshot(snap);
      return performance.now() - t0;
    }
  };
  if (config.ws_path) { socket.start(); }
}());
