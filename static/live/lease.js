/* netdash lease panel: one subnet's address pool as a grid, active leases with live countdowns, and the
 * lease timeline. Every `live/lease_panel.html` include on a page becomes one panel with its own socket
 * (the socket asks for that subnet's lease history in its snapshot). Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;
  var MAX_CELLS = 1024;      // a /22 fits; bigger pools show their first 1,024 addresses
  var MAX_TIMELINE = 200;

  function ipToInt(ip) {
    var p = String(ip).split('.');
    if (p.length !== 4) { return null; }
    return ((+p[0] << 24) >>> 0) + (+p[1] << 16) + (+p[2] << 8) + (+p[3]);
  }
  function intToIp(n) { return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'); }

  function Panel(root) {
    this.root = root;
    this.config = L.readConfig(root.dataset.configId);
    this.subnetId = this.config.subnet;
    this.store = new L.Store(this.config);
    this.grid = root.querySelector('[data-role="grid"]');
    this.leasesBody = root.querySelector('[data-role="leases"]');
    this.timeline = root.querySelector('[data-role="timeline"]');
    this.summary = root.querySelector('[data-role="summary"]');
    this.statusEl = root.querySelector('[data-role="status"]');
    this.cells = new Map();     // ip → cell element
    this.cidr = null;
    this.shownEvents = 0;
    this.renderCount = 0;
    var self = this;
    this.socket = new L.LiveSocket(this.config.ws_path, {
      snapshot: function (snap) { self.store.loadSnapshot(snap); self.render(true); },
      event: function (msg) { if (self.store.applyEvent(msg)) { self.render(false); } },
      status: function (state, text) { self.statusEl.className = 'live-status ' + state; self.statusEl.textContent = text; }
    });
    window.setInterval(function () { self.tick(); }, 1000);
    this.socket.start();
  }

  Panel.prototype.subnet = function () { return this.store.subnets.get(this.subnetId); };

  /** State of every address: gateway, dhcp, leased, reserved (instance IP without a lease), free, outside. */
  Panel.prototype.addressStates = function (s) {
    var states = new Map();
    var self = this;
    var pools = (s.pools || []).map(function (p) { return [ipToInt(p[0]), ipToInt(p[1])]; });
    var base = ipToInt(s.cidr.split('/')[0]), prefix = +s.cidr.split('/')[1];
    var size = Math.pow(2, 32 - prefix);
    var n = Math.min(size, MAX_CELLS);
    for (var k = 0; k < n; k++) {
      var v = base + k, inPool = pools.some(function (p) { return v >= p[0] && v <= p[1]; });
      states.set(intToIp(v), { state: inPool ? 'free' : 'outside', who: '' });
    }
    self.store.instances.forEach(function (i) {
      if (i.subnet === s.id && i.ip_address && states.has(i.ip_address)) {
        states.set(i.ip_address, { state: 'reserved', who: i.hostname + ' (' + i.mac_address + ')' });
      }
    });
    self.store.leases.forEach(function (l) {
      if (l.subnet === s.id && states.has(l.ip_address)) {
        states.set(l.ip_address, { state: 'leased', who: (l.hostname || '?') + ' (' + l.mac_address + ')' });
      }
    });
    if (s.gateway && states.has(s.gateway)) { states.set(s.gateway, { state: 'gateway', who: 'gateway' }); }
    if (states.has(s.dhcp_address)) { states.set(s.dhcp_address, { state: 'dhcp', who: 'dnsmasq' }); }
    return { states: states, size: size, shown: n };
  };

  Panel.prototype.render = function (full) {
    var s = this.subnet();
    if (!s) { this.summary.textContent = 'This subnet no longer exists.'; return; }
    if (s.ip_version === 6 || s.cidr.indexOf(':') !== -1) {
      this.grid.innerHTML = '<p class="muted">IPv6 pools are too large to draw; see the lease table.</p>';
    } else {
      this.renderGrid(s, full || this.cidr !== s.cidr);
    }
    this.renderLeases(s);
    this.renderTimeline(full);
    this.renderCount += 1;
    this.root.dataset.rendered = String(this.renderCount);
  };

  Panel.prototype.renderGrid = function (s, rebuild) {
    var info = this.addressStates(s);
    var self = this;
    if (rebuild) {
      this.cidr = s.cidr;
      this.cells.clear();
      var frag = document.createDocumentFragment();
      info.states.forEach(function (st, ip) {
        var cell = document.createElement('span');
        cell.className = 'cell';
        cell.dataset.ip = ip;
        self.cells.set(ip, cell);
        frag.appendChild(cell);
      });
      this.grid.innerHTML = '';
      this.grid.appendChild(frag);
    }
    var tally = { free: 0, leased: 0, reserved: 0 };
    info.states.forEach(function (st, ip) {
      var cell = self.cells.get(ip);
      if (!cell) { return; }
      var cls = 'cell ' + st.state;
      if (cell.className !== cls) {
        if (!rebuild) { cls += ' changed'; }
        cell.className = cls;
      }
      cell.title = ip + ' — ' + st.state + (st.who ? ': ' + st.who : '');
      if (tally[st.state] !== undefined) { tally[st.state] += 1; }
    });
    this.summary.textContent = tally.leased + ' leased · ' + tally.reserved + ' reserved · ' + tally.free +
      ' free' + (info.shown < info.size ? ' · showing the first ' + info.shown + ' of ' + info.size + ' addresses' : '');
  };

  Panel.prototype.renderLeases = function (s) {
    var rows = [];
    this.store.leases.forEach(function (l) { if (l.subnet === s.id) { rows.push(l); } });
    rows.sort(function (a, b) { return (ipToInt(a.ip_address) || 0) - (ipToInt(b.ip_address) || 0); });
    if (!rows.length) {
      this.leasesBody.innerHTML = '<tr class="empty"><td colspan="4" class="muted">No active leases.</td></tr>';
      return;
    }
    this.leasesBody.innerHTML = rows.map(function (l) {
      return '<tr data-lease="' + l.id + '"><td class="mono">' + L.esc(l.ip_address) + '</td><td class="mono">' +
        L.esc(l.mac_address) + '</td><td>' + L.esc(l.hostname || '—') + '</td><td class="mono countdown" data-expires="' +
        L.esc(l.expires_at || '') + '"></td></tr>';
    }).join('');
    this.tick();
  };

  Panel.prototype.tick = function () {
    var now = Date.now();
    this.leasesBody.querySelectorAll('[data-expires]').forEach(function (td) {
      var at = td.dataset.expires ? Date.parse(td.dataset.expires) : NaN;
      var left = (at - now) / 1000;
      td.textContent = td.dataset.expires ? L.countdown(left) : 'never';
      td.classList.toggle('soon', left < 60);
    });
  };

  Panel.prototype.renderTimeline = function (full) {
    var sid = this.subnetId;
    var evs = this.store.leaseEvents.filter(function (e) { return e.subnet === sid; });
    var fresh = full ? 0 : Math.max(0, evs.length - this.shownEvents);
    this.shownEvents = evs.length;
    var shown = evs.slice(-MAX_TIMELINE).reverse();
    if (!shown.length) {
      this.timeline.innerHTML = '<li class="muted">No lease events yet.</li>';
      return;
    }
    this.timeline.innerHTML = shown.map(function (e, idx) {
      var at = e.at ? new Date(e.at) : null;
      return '<li class="ev ' + L.esc(e.event) + (idx < fresh ? ' new' : '') + '"><time>' +
        L.esc(at ? at.toLocaleTimeString([], { hour12: false }) : '') + '</time><span class="kind">' + L.esc(e.event) +
        '</span><span class="mono">' + L.esc(e.ip_address) + '</span><span class="mono muted">' +
        L.esc(e.mac_address) + '</span><span>' + L.esc(e.hostname || '') + '</span></li>';
    }).join('');
  };

  function init() {
    document.querySelectorAll('[data-lease-panel]').forEach(function (root) {
      if (root.dataset.initialised) { return; }
      root.dataset.initialised = '1';
      root.netdashPanel = new Panel(root);
    });
  }
  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', init); } else { init(); }
}());
