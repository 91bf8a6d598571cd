/* netdash portal pages, live: the server renders the page; this script keeps it current from the tenant's
 * live websocket (NetdashLive.LiveSocket + Store from live.js: snapshot, then sequenced deltas; no polling).
 *
 * It patches only elements that carry the data attributes documented in portal/templates/portal/base.html:
 *   an "owner" element ([data-network-id] / [data-instance-id] / [data-lease-id] with data-status) holds fields
 *   ([data-field="status"], "status_reason", "ip_address", "instance_count", …) that are patched in place;
 *   a list ([data-network-list], [data-instance-list], [data-lease-list]) gains and loses rows.
 * Routers ([data-router-id]: status, reason, external_ip) and floating IPs ([data-floating-ip-id]: instance) are
 * patched the same way; [data-router-list] and [data-floating-ip-list] gain and lose rows.
 * A network page's DHCP servers ([data-dhcp-servers]) are redrawn from the model's servers and node states, and
 * an instance page's node ([data-instance-node]) shows that node's state ("node down"); the nodes page's rows
 * ([data-node-list]) show each node's agent state and counts from the model.
 * The lease panels ([data-lease-panel]) belong to lease.js and are never touched here.
 *
 * After every snapshot and delta the whole page is reconciled against the model (pages are small), so a
 * reconnect's fresh snapshot repairs anything a missed delta left behind. Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;
  var config = L && L.readConfig('page-live-config');
  if (!config) { return; }
  var labels = config.labels || { status: {}, lease: {} };
  var OWNER = '[data-network-id]:not([data-field]), [data-instance-id]:not([data-field]), ' +
    '[data-lease-id]:not([data-field]), [data-instance-lease], [data-lease-panel], ' +
    '[data-router-id]:not([data-field]), [data-floating-ip-id]:not([data-field])';

  var store = new L.Store(config);
  // Lease states seen in deltas (released/expired too): the Store keeps only active leases, the lease table
  // shows ended ones as well.
  var leaseSeen = new Map();
  var MAX_EVENTS = 30;  // as many as portal.selectors.network_events shows
  var renders = 0;
  var pending = false;

  function schedule() {
    // setTimeout, not requestAnimationFrame: a page in a background tab must still catch up.
    if (pending) { return; }
    pending = true;
    window.setTimeout(function () { pending = false; render(); }, 0);
  }

  function statusLabel(status) { return labels.status[status] || (status === 'deleted' ? 'Deleted' : status); }
  function leaseLabel(state) { return labels.lease[state] || state; }

  function ownFields(owner) {
    var out = {};
    owner.querySelectorAll('[data-field]').forEach(function (f) {
      if (f.parentElement.closest(OWNER) === owner && !out[f.dataset.field]) { out[f.dataset.field] = f; }
    });
    return out;
  }

  function setText(el, text) { if (el && el.textContent !== text) { el.textContent = text; } }

  function setHtml(el, html) { if (el && el.innerHTML !== html) { el.innerHTML = html; } }

  /** A status badge (portal/_status.html) and its owner's data-status. */
  function setStatus(owner, fields, status, reason) {
    if (owner.dataset.status !== status) { owner.dataset.status = status; }
    var badge = fields.status;
    if (badge) {
      var cls = 'badge ' + status;
      if (badge.className !== cls) { badge.className = cls; }
      badge.dataset.status = status;
      setText(badge, statusLabel(status));
    }
    var why = fields.status_reason;
    if (why && reason !== undefined) {
      setText(why, reason || '');
      why.hidden = !reason;
      if (why.classList.contains('status-reason')) { why.classList.toggle('error', status === 'error'); }
    }
  }

  function ipHtml(i) {
    return L.esc(i.ip_address || '—') + (i.fixed_ip ? ' <span class="tag">fixed</span>' : '');
  }

  /** "2024-05-01 12:00:00" in UTC, as the server renders it (TIME_ZONE = "UTC"). */
  function when(iso) {
    if (!iso) { return '—'; }
    var d = new Date(iso);
    return isNaN(d) ? '—' : d.toISOString().slice(0, 19).replace('T', ' ');
  }

  function activeLeaseOf(instance) {
    var found = null;
    store.leases.forEach(function (l) {
      if (l.subnet === instance.subnet && (l.instance === instance.id || l.mac_address === instance.mac_address)) {
        found = l;
      }
    });
    return found;
  }

  function counts() {
    var c = { instances: new Map(), leases: new Map() };
    store.instances.forEach(function (i) { c.instances.set(i.network, (c.instances.get(i.network) || 0) + 1); });
    store.leases.forEach(function (l) { c.leases.set(l.network, (c.leases.get(l.network) || 0) + 1); });
    return c;
  }

  function gone(owner, what) {
    // The object was deleted while the page was open: say so instead of silently showing stale facts.
    if (owner.dataset.gone) { return; }
    owner.dataset.gone = '1';
    var banner = document.createElement('div');
    banner.className = 'banner warn';
    banner.setAttribute('role', 'status');
    banner.dataset.liveGone = '';
    banner.textContent = 'This ' + what + ' has been deleted.';
    owner.parentNode.insertBefore(banner, owner);
  }

  // --- owners: patch every network / instance / lease element in place ---------------------------------

  // The owner's object is gone: a row of a list disappears; anything else stays, marked deleted.
  function deleted(el, fields, listSelector, what) {
    if (el.closest(listSelector)) { el.remove(); return; }
    setStatus(el, fields, 'deleted', '');
    gone(el, what);
  }

  function patchNetwork(el, c) {
    var id = +el.dataset.networkId;
    var n = store.networks.get(id);
    var fields = ownFields(el);
    if (!n) { deleted(el, fields, '[data-network-list]', 'network'); return; }
    setStatus(el, fields, n.status, n.status_reason);
    setText(fields.name, n.name);
    if (fields.node) { setText(fields.node, n.node || '—'); }
    setText(fields.instance_count, String(c.instances.get(id) || 0));
    setText(fields.lease_count, String(c.leases.get(id) || 0));
    if (fields.subnets) {
      var subs = [];
      store.subnets.forEach(function (s) { if (s.network === id) { subs.push(s); } });
      subs.sort(function (a, b) { return a.id - b.id; });
      setHtml(fields.subnets, subs.length ? subs.map(function (s) {
        return '<div data-subnet-id="' + s.id + '">' + L.esc(s.cidr) + '</div>';
      }).join('') : '<span class="muted">none</span>');
    }
  }

  function patchInstance(el) {
    var i = store.instances.get(+el.dataset.instanceId);
    var fields = ownFields(el);
    if (!i) { deleted(el, fields, '[data-instance-list]', 'instance'); return; }
    setStatus(el, fields, i.status, i.status_reason);
    setHtml(fields.ip_address, ipHtml(i));
    if (fields.lease) {
      setHtml(fields.lease, activeLeaseOf(i) ? '<span class="badge lease-active">Leased</span>'
        : '<span class="muted">none</span>');
    }
  }

  function patchLeaseRow(el) {
    var id = +el.dataset.leaseId;
    var l = store.leases.get(id) || leaseSeen.get(id);
    var state = l ? l.state : (el.dataset.status === 'active' ? 'ended' : el.dataset.status);
    var fields = ownFields(el);
    el.dataset.status = state;
    if (fields.state) {
      var cls = 'badge lease-' + (state === 'ended' ? 'released' : state);
      if (fields.state.className !== cls) { fields.state.className = cls; }
      // "Ended": active when the page was drawn, gone from a later snapshot; released or expired, unknown which.
      setText(fields.state, state === 'ended' ? 'Ended' : leaseLabel(state));
    }
    if (l) {
      setText(fields.hostname, l.hostname || '—');
      setText(fields.expires_at, when(l.expires_at));
    }
  }

  /** The lease section of an instance page: shows the instance's active lease, or "no lease yet". */
  function patchInstanceLease(el) {
    var i = store.instances.get(config.instance);
    var l = i ? activeLeaseOf(i) : null;
    var facts = el.querySelector('[data-lease-facts]');
    var none = el.querySelector('[data-lease-none]');
    if (facts) { facts.hidden = !l; }
    if (none) { none.hidden = !!l; }
    if (!l) { delete el.dataset.leaseId; return; }
    el.dataset.leaseId = String(l.id);
    var fields = ownFields(el);
    setText(fields.ip_address, l.ip_address);
    if (fields.state) { fields.state.className = 'badge lease-' + l.state; setText(fields.state, leaseLabel(l.state)); }
    setText(fields.hostname, l.hostname || '—');
    setText(fields.expires_at, when(l.expires_at));
  }

  // --- lists: add rows for objects that appeared --------------------------------------------------------

  function insertSorted(tbody, row, key) {
    var rows = Array.from(tbody.querySelectorAll(':scope > tr[data-sort]'));
    var after = rows.find(function (r) { return r.dataset.sort.localeCompare(key) > 0; });
    row.dataset.sort = key;
    tbody.insertBefore(row, after || tbody.querySelector(':scope > tr[data-empty-row]'));
  }

  function statusCell(status, reason) {
    return '<span class="badge ' + L.esc(status) + '" data-field="status" data-status="' + L.esc(status) + '">' +
      L.esc(statusLabel(status)) + '</span> <div class="reason" data-field="status_reason"' +
      (reason ? '' : ' hidden') + '>' + L.esc(reason || '') + '</div>';
  }

  function syncNetworkList(table) {
    var tbody = table.tBodies[0];
    var shown = new Set();
    tbody.querySelectorAll(':scope > tr[data-network-id]').forEach(function (r) {
      shown.add(+r.dataset.networkId);
      if (!r.dataset.sort) { r.dataset.sort = r.querySelector('[data-field="name"]').textContent; }
    });
    store.networks.forEach(function (n) {
      if (shown.has(n.id) || n.tenant !== config.tenant) { return; }
      var row = document.createElement('tr');
      row.dataset.networkId = String(n.id);
      row.dataset.status = n.status;
      row.innerHTML = '<td><a href="' + L.esc(n.url || '#') + '" data-field="name">' + L.esc(n.name) + '</a></td>' +
        '<td class="mono" data-field="subnets"></td><td>' + statusCell(n.status, n.status_reason) + '</td>' +
        '<td class="num" data-field="instance_count">0</td><td class="num" data-field="lease_count">0</td>';
      insertSorted(tbody, row, n.name);
    });
  }

  function syncInstanceList(table) {
    var tbody = table.tBodies[0];
    var shown = new Set();
    tbody.querySelectorAll(':scope > tr[data-instance-id]').forEach(function (r) {
      shown.add(+r.dataset.instanceId);
      if (!r.dataset.sort) { r.dataset.sort = r.querySelector('td').textContent.trim(); }
    });
    store.instances.forEach(function (i) {
      if (shown.has(i.id) || i.network !== config.network) { return; }
      var subnet = store.subnets.get(i.subnet);
      var row = document.createElement('tr');
      row.dataset.instanceId = String(i.id);
      row.dataset.status = i.status;
      row.innerHTML = '<td><a href="' + L.esc(i.url || '#') + '">' + L.esc(i.hostname) + '</a></td>' +
        '<td class="mono" data-field="ip_address"></td><td class="mono">' + L.esc(i.mac_address) + '</td>' +
        '<td class="mono">' + L.esc(subnet ? subnet.cidr : '') + '</td><td data-field="lease"></td>' +
        '<td>' + statusCell(i.status, i.status_reason) + '</td>';
      insertSorted(tbody, row, i.hostname);
    });
  }

  function syncLeaseList(table) {
    var tbody = table.tBodies[0];
    var shown = new Set();
    tbody.querySelectorAll(':scope > tr[data-lease-id]').forEach(function (r) { shown.add(+r.dataset.leaseId); });
    var fresh = [];
    store.leases.forEach(function (l) { if (l.network === config.network && !shown.has(l.id)) { fresh.push(l); } });
    // Active leases first, as the server orders them; a lease that just arrived goes to the top.
    fresh.sort(function (a, b) { return a.id - b.id; }).forEach(function (l) {
      var row = document.createElement('tr');
      row.dataset.leaseId = String(l.id);
      row.dataset.status = l.state;
      row.innerHTML = '<td class="mono" data-field="ip_address">' + L.esc(l.ip_address) + '</td><td class="mono">' +
        L.esc(l.mac_address) + '</td><td data-field="hostname"></td><td><span class="badge" data-field="state">' +
        '</span></td><td data-field="expires_at"></td>';
      tbody.insertBefore(row, tbody.firstElementChild);
    });
  }

  function syncEmptyRows() {
    document.querySelectorAll('[data-empty-row]').forEach(function (row) {
      var tbody = row.parentElement;
      row.hidden = tbody.querySelector(':scope > tr:not([data-empty-row])') !== null;
    });
  }

  function syncQuota() {
    var used = { networks: store.networks.size, subnets: store.subnets.size, instances: store.instances.size };
    document.querySelectorAll('[data-quota-tenant-id="' + config.tenant + '"] [data-quota]').forEach(function (row) {
      var n = used[row.dataset.quota];
      if (n === undefined) { return; }
      setText(row.querySelector('[data-field="used"]'), String(n));
      var bar = row.querySelector('progress');
      if (bar) { bar.value = n; bar.textContent = n + ' of ' + bar.max; bar.classList.toggle('full', n >= bar.max); }
    });
  }

  function routerSubnets(r) {
    return (r.subnets || []).map(function (id) { var sn = store.subnets.get(id); return sn ? sn.cidr : ''; })
      .filter(Boolean);
  }

  function externalName(r) {
    var n = store.externals.get(r.external_network) || store.networks.get(r.external_network);
    return n ? n.name : '—';
  }

  function patchRouter(el) {
    var r = store.routers.get(+el.dataset.routerId);
    var fields = ownFields(el);
    if (!r) { deleted(el, fields, '[data-router-list], [data-network-routers]', 'router'); return; }
    setStatus(el, fields, r.status, r.status_reason);
    setText(fields.external_ip, r.external_ip || '—');
    if (fields.external_network) { setText(fields.external_network, externalName(r)); }
    if (fields.subnets) {
      setHtml(fields.subnets, routerSubnets(r).map(function (c) { return '<div>' + L.esc(c) + '</div>'; }).join('') ||
        '—');
    }
  }

  function fipInstanceHtml(f) {
    var i = f.instance ? store.instances.get(f.instance) : null;
    if (!f.instance) { return '<span class="muted">not associated</span>'; }
    if (!i) { return 'instance ' + L.esc(f.instance); }
    return '<a href="' + L.esc(i.url) + '">' + L.esc(i.hostname) + '</a> <span class="mono">' +
      L.esc(i.ip_address || '') + '</span>';
  }

  function patchFloatingIp(el) {
    var f = store.floatingIps.get(+el.dataset.floatingIpId);
    var fields = ownFields(el);
    if (!f) { deleted(el, fields, '[data-floating-ip-list], table', 'floating IP'); return; }
    setHtml(fields.instance, fipInstanceHtml(f));
  }

  function syncRouterList(table) {
    var tbody = table.tBodies[0];
    var shown = new Set();
    tbody.querySelectorAll(':scope > tr[data-router-id]').forEach(function (r) {
      shown.add(+r.dataset.routerId);
      if (!r.dataset.sort) { r.dataset.sort = r.querySelector('[data-field="name"]').textContent; }
    });
    store.routers.forEach(function (r) {
      if (shown.has(r.id) || r.tenant !== config.tenant) { return; }
      var row = document.createElement('tr');
      row.dataset.routerId = String(r.id);
      row.dataset.status = r.status;
      row.innerHTML = '<td><a href="' + L.esc(r.url || '#') + '" data-field="name">' + L.esc(r.name) + '</a></td>' +
        '<td data-field="external_network"></td><td class="mono" data-field="external_ip"></td>' +
        '<td class="mono" data-field="subnets"></td><td>' + statusCell(r.status, r.status_reason) + '</td>';
      insertSorted(tbody, row, r.name);
    });
  }

  function syncFloatingIpList(table) {
    var tbody = table.tBodies[0];
    var shown = new Set();
    tbody.querySelectorAll(':scope > tr[data-floating-ip-id]').forEach(function (r) {
      shown.add(+r.dataset.floatingIpId);
      if (!r.dataset.sort) { r.dataset.sort = r.querySelector('[data-field="address"]').textContent; }
    });
    store.floatingIps.forEach(function (f) {
      if (shown.has(f.id) || f.tenant !== config.tenant) { return; }
      var net = store.externals.get(f.network) || store.networks.get(f.network);
      var row = document.createElement('tr');
      row.dataset.floatingIpId = String(f.id);
      row.innerHTML = '<td class="mono"><a href="' + L.esc(f.url || L.fill(store.urls.floating_ip, { id: f.id })) +
        '" data-field="address">' + L.esc(f.address) + '</a></td><td>' + L.esc(net ? net.name : '') + '</td>' +
        '<td data-field="instance"></td>';
      insertSorted(tbody, row, f.address);
    });
  }

  /** As portal/_node_state.html draws it. */
  function nodeStateHtml(state) {
    var s = state || 'unknown';
    return '<span class="badge node-' + L.esc(s) + '" data-field="node_state" data-node-state="' + L.esc(state || '') +
      '">' + L.esc(s === 'down' ? 'node down' : s) + '</span>';
  }

  function nodeState(name) { var n = store.nodes.get(name); return n ? n.state : ''; }

  function syncDhcpServers(el) {
    var servers = store.dhcpServers.get(+el.dataset.dhcpServers);
    if (!servers) { return; }  // not in the model (yet): keep what the server drew
    var note = el.querySelector('[data-dhcp-no-standby]');
    if (note) {
      note.hidden = servers.length >= +el.dataset.wanted;
      setText(note.querySelector('[data-field="dhcp_count"]'), String(servers.length));
    }
    setHtml(el.querySelector('[data-dhcp-server-rows]'), servers.length ? servers.map(function (d) {
      var addresses = Object.keys(d.addresses || {}).map(function (cidr) {
        return '<div>' + L.esc(d.addresses[cidr] || '—') + ' <span class="muted">(' + L.esc(cidr) + ')</span></div>';
      }).join('') || '<span class="muted">no DHCP subnet</span>';
      return '<tr data-dhcp-rank="' + d.rank + '" data-node="' + L.esc(d.node) + '"><td>' +
        (d.rank === 0 ? 'first' : 'standby ' + d.rank) + '</td><td class="mono">' + addresses + '</td>' +
        '<td class="mono" data-field="node">' + L.esc(d.node) + '</td><td>' + nodeStateHtml(nodeState(d.node)) +
        '</td></tr>';
    }).join('') : '<tr><td colspan="4" class="muted">No DHCP server.</td></tr>');
  }

  function syncInstanceNode(el) {
    var i = store.instances.get(config.instance);
    var name = i ? i.node : el.dataset.instanceNode;
    if (i && i.node !== el.dataset.instanceNode) { el.dataset.instanceNode = i.node; }
    setHtml(el, '<span class="mono">' + L.esc(name || '—') + '</span>' +
      (name ? ' ' + nodeStateHtml(nodeState(name)) : ''));
  }

  /** The nodes page ([data-node-list], superusers, the all-tenants view): each row's agent state and what the
   * model puts on the node, counted as portal.selectors.node_rows counts it. A node the model has no state for
   * keeps the state the server drew. */
  function syncNodeList(table) {
    var per = new Map();
    function add(name, key, failed) {
      var c = per.get(name);
      if (!c) { c = { networks: 0, dhcp_duties: 0, instances: 0, routers: 0, failed: 0 }; per.set(name, c); }
      c[key] += 1;
      if (failed) { c.failed += 1; }
    }
    store.networks.forEach(function (n) { add(n.node, 'networks', false); });
    store.dhcpServers.forEach(function (servers, networkId) {
      var n = store.networks.get(networkId);
      servers.forEach(function (d) { add(d.node, 'dhcp_duties', !!n && n.status === 'error'); });
    });
    store.instances.forEach(function (i) { add(i.node, 'instances', i.status === 'error'); });
    store.routers.forEach(function (r) { add(r.node, 'routers', r.status === 'error'); });
    table.querySelectorAll('tbody > tr[data-node]').forEach(function (row) {
      var name = row.dataset.node;
      var c = per.get(name) || { networks: 0, dhcp_duties: 0, instances: 0, routers: 0, failed: 0 };
      var field = function (k) { return row.querySelector('[data-field="' + k + '"]'); };
      if (store.nodes.has(name)) { setHtml(row.querySelector('[data-node-agent]'), nodeStateHtml(nodeState(name))); }
      ['networks', 'dhcp_duties', 'instances', 'routers'].forEach(function (k) { setText(field(k), String(c[k])); });
      setText(field('load'), String(c.dhcp_duties + c.instances + c.routers));
      var detail = row.querySelector('a').getAttribute('href');
      setHtml(field('failed'), c.failed ? '<a class="danger" href="' + L.esc(detail) + '">' + c.failed + '</a>' : '0');
    });
  }

  function render() {
    document.querySelectorAll('[data-network-list]').forEach(syncNetworkList);
    document.querySelectorAll('[data-router-list]').forEach(syncRouterList);
    document.querySelectorAll('[data-floating-ip-list]').forEach(syncFloatingIpList);
    if (config.network) {
      document.querySelectorAll('[data-instance-list]').forEach(syncInstanceList);
      document.querySelectorAll('[data-lease-list]').forEach(syncLeaseList);
    }
    var c = counts();
    document.querySelectorAll(OWNER).forEach(function (el) {
      if (el.hasAttribute('data-lease-panel')) { return; }
      if (el.hasAttribute('data-instance-lease')) { patchInstanceLease(el); } else if (el.dataset.instanceId) {
        patchInstance(el);
      } else if (el.dataset.leaseId) { patchLeaseRow(el); } else if (el.dataset.networkId) { patchNetwork(el, c); }
      else if (el.dataset.routerId) { patchRouter(el); } else if (el.dataset.floatingIpId) { patchFloatingIp(el); }
    });
    document.querySelectorAll('[data-dhcp-servers]').forEach(syncDhcpServers);
    document.querySelectorAll('[data-instance-node]').forEach(syncInstanceNode);
    document.querySelectorAll('[data-node-list]').forEach(syncNodeList);
    syncEmptyRows();
    syncQuota();
    renders += 1;
    document.body.dataset.liveRendered = String(renders);
  }

  /** A network page's "Recent events": lease events are history, so each delta is prepended once, drawn as
   * the server draws it. (Audit entries are not sent over the socket; they show on the next visit.) */
  function prependLeaseEvent(msg) {
    var d = msg.data || {};
    var ev = d.event;
    var list = document.querySelector('[data-event-list]');
    if (!list || !config.network || d.network !== config.network || !ev || typeof ev !== 'object') { return; }
    var at = ev.at ? new Date(ev.at) : new Date();
    var li = document.createElement('li');
    li.className = 'event lease';
    li.innerHTML = '<time datetime="' + L.esc(at.toISOString()) + '">' + L.esc(when(at.toISOString())) +
      '</time> <span class="event-action mono">lease.' + L.esc(ev.event) + '</span> <span>' +
      L.esc([ev.ip_address, ev.mac_address, ev.hostname].filter(Boolean).join(' ')) + '</span>';
    list.querySelectorAll(':scope > li.muted').forEach(function (el) { el.remove(); });
    list.insertBefore(li, list.firstElementChild);
    while (list.children.length > MAX_EVENTS) { list.lastElementChild.remove(); }
  }

  var socket = new L.LiveSocket(config.ws_path, {
    snapshot: function (snap) {
      store.loadSnapshot(snap);
      // The snapshot is the truth about active leases; keep only the ended states deltas told us about.
      leaseSeen.forEach(function (l, id) { if (l.state === 'active') { leaseSeen.delete(id); } });
      schedule();
    },
    event: function (msg) {
      var d = msg.data || {};
      if ((msg.event || '').indexOf('lease.') === 0 && d.id !== undefined) {
        leaseSeen.set(d.id, d);
        prependLeaseEvent(msg);
      }
      store.applyEvent(msg);
      schedule();
    },
    status: function (state, text) {
      document.querySelectorAll('[data-live-status]').forEach(function (el) {
        el.className = 'live-status ' + state;
        el.textContent = state === 'live' ? 'live' : text;
        el.title = text;
      });
    }
  });
  window.netdashPage = { store: store, socket: socket, render: render };
  socket.start();
}());
