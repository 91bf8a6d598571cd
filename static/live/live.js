/* netdash live view: the websocket (reconnect, sequence check, resync) and the client-side model.
 *
 * Why a model: the page never redraws from scratch. A snapshot replaces the model, each delta patches it,
 * and the diagrams reconcile themselves against the model (topology.js, lease.js). Both pages share this file;
 * it defines window.NetdashLive once even when several panels include it.
 * Plain ES2017, no build step.
 */
(function () {
  'use strict';
  if (window.NetdashLive) { return; }

  var MAX_BACKOFF_MS = 30000;
  var GAP_RESYNC_DELAY_MS = 300;

  /** A websocket that reconnects with jittered exponential backoff and resyncs on a sequence gap. */
  class LiveSocket {
    constructor(path, handlers) {
      this.path = path;
      this.handlers = handlers;
      this.ws = null;
      this.attempt = 0;
      this.lastSeq = null;   // null until the first snapshot
      this.epoch = null;     // which life of the server's counter lastSeq belongs to (tenants/events.py)
      this.resyncTimer = null;
      this.stopped = false;
      this.stats = { snapshots: 0, snapshotParts: 0, events: 0, gaps: 0, resyncs: 0, reconnects: 0 };
      this.partial = null;   // a snapshot whose later parts are still arriving (live/protocol.py)
    }

    url() {
      var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
      return scheme + window.location.host + this.path;
    }

    start() {
      var self = this;
      self.status('connecting', 'connecting…');
      var ws = new WebSocket(self.url());
      self.ws = ws;
      ws.onopen = function () { self.attempt = 0; self.partial = null; self.status('live', 'live'); };
      ws.onmessage = function (ev) {
        var msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        self.handle(msg);
      };
      ws.onclose = function (ev) {
        if (self.ws !== ws) { return; }
        self.ws = null;
        if (self.stopped) { return; }
        if (ev.code === 4403) {
          // Not allowed (signed out, or no longer a member): retrying cannot help.
          self.status('forbidden', 'not allowed — sign in again');
          return;
        }
        var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, self.attempt));
        delay = Math.round(delay * (0.5 + Math.random() / 2));
        self.attempt += 1;
        self.stats.reconnects += 1;
        self.status('reconnecting', 'reconnecting in ' + Math.ceil(delay / 1000) + ' s');
        window.setTimeout(function () { if (!self.stopped) { self.start(); } }, delay);
      };
    }

    stop() { this.stopped = true; if (this.ws) { this.ws.close(); } }

    status(state, text) { if (this.handlers.status) { this.handlers.status(state, text, this); } }

    send(obj) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) { this.ws.send(JSON.stringify(obj)); }
    }

    /** Ask for a fresh snapshot (debounced: a burst of gaps costs one snapshot). */
    resync() {
      var self = this;
      if (self.resyncTimer) { return; }
      self.resyncTimer = window.setTimeout(function () {
        self.resyncTimer = null;
        self.stats.resyncs += 1;
        self.send({ type: 'resync' });
      }, GAP_RESYNC_DELAY_MS);
    }

    /** A snapshot in parts: keep part 0, append each later part's lists; the whole snapshot once all are in. */
    assemble(msg) {
      if (msg.type === 'snapshot') {
        this.partial = { snap: msg, next: 1 };
      } else {
        var p = this.partial;
        if (!p || msg.part !== p.next || msg.parts !== p.snap.parts || msg.seq !== p.snap.seq ||
            msg.epoch !== p.snap.epoch) {
          this.partial = null;  // a part out of order or of another snapshot: this one is incomplete
          this.resync();
          return null;
        }
        Object.keys(msg).forEach(function (key) {
          if (Array.isArray(msg[key])) { p.snap[key] = (p.snap[key] || []).concat(msg[key]); }
        });
        p.next += 1;
      }
      this.stats.snapshotParts += 1;
      if (this.partial.next < this.partial.snap.parts) { return null; }
      var whole = this.partial.snap;
      this.partial = null;
      return whole;
    }

    handle(msg) {
      if ((msg.type === 'snapshot' && msg.parts > 1) || msg.type === 'snapshot.part') {
        msg = this.assemble(msg);
        if (msg === null) { return; }
      }
      if (msg.type === 'snapshot') {
        this.epoch = msg.epoch;
        this.lastSeq = msg.seq;
        this.stats.snapshots += 1;
        this.handlers.snapshot(msg);
        this.status('live', 'live · seq ' + this.lastSeq);
      } else if (msg.type === 'event') {
        if (this.lastSeq === null || this.partial) { return; }  // (the consumer sends no event between parts)
        var restarted = msg.epoch !== this.epoch;
        // Within one epoch a number we hold is already in the snapshot. A new epoch means the counter started
        // again at 1 (Redis restarted): its numbers say nothing about ours, so nothing may be dropped for them.
        if (!restarted && msg.seq <= this.lastSeq) { return; }
        this.stats.events += 1;
        if (restarted || msg.seq !== this.lastSeq + 1) {
          // Missed something (a dropped message, publishers racing, an outage): apply, then re-read everything.
          this.stats.gaps += 1;
          this.resync();
        }
        this.epoch = msg.epoch;
        this.lastSeq = msg.seq;
        this.handlers.event(msg);
        this.status('live', 'live · seq ' + this.lastSeq);
      } else if (msg.type === 'error' && window.console) {
        window.console.warn('live socket:', msg.code, msg.message);
      }
    }
  }

  function fill(template, values) {
    if (!template) { return null; }
    return Object.keys(values).reduce(function (s, k) { return s.split('{' + k + '}').join(String(values[k])); },
      template);
  }

  /** The state of one view: tenants, networks, subnets, instances, active leases, lease timeline, routers and
   * floating IPs (with the external networks routers reach), each network's DHCP servers and the states of the
   * nodes they and the instances are on. */
  class Store {
    constructor(config) {
      this.config = config;
      this.naming = config.naming || {};
      this.urls = config.urls || {};
      this.clear();
    }

    clear() {
      this.tenants = new Map();
      this.networks = new Map();
      this.subnets = new Map();
      this.instances = new Map();
      this.leases = new Map();      // active leases by id
      this.leaseEvents = [];        // oldest first
      this.routers = new Map();
      this.floatingIps = new Map();
      this.externals = new Map();   // external networks (often another tenant's): a router's far side
      this.dhcpServers = new Map(); // network id → [{node, rank, addresses: {cidr: address}}], first first
      this.nodes = new Map();       // node name → {name, state: live | draining | down}
      this.version = 0;
    }

    loadSnapshot(snap) {
      var self = this;
      self.clear();
      if (snap.naming) { self.naming = snap.naming; }
      if (snap.urls) { self.urls = snap.urls; }
      (snap.tenants || []).forEach(function (t) { self.tenants.set(t.id, t); });
      (snap.networks || []).forEach(function (n) { self.putNetwork(n); });
      (snap.subnets || []).forEach(function (s) { self.subnets.set(s.id, s); });
      (snap.instances || []).forEach(function (i) { self.putInstance(i); });
      (snap.leases || []).forEach(function (l) { self.leases.set(l.id, l); });
      self.leaseEvents = (snap.lease_events || []).slice();
      (snap.routers || []).forEach(function (r) { self.putRouter(r); });
      (snap.floating_ips || []).forEach(function (f) { self.floatingIps.set(f.id, f); });
      (snap.external_networks || []).forEach(function (n) { self.externals.set(n.id, n); });
      (snap.dhcp_servers || []).forEach(function (d) { self.dhcpServers.set(d.network, d.servers); });
      (snap.nodes || []).forEach(function (n) { self.nodes.set(n.name, n); });
      self.version += 1;
    }

    putNetwork(n) {
      n.dhcp_namespace = n.dhcp_namespace || fill(this.naming.dhcp, { kernel_id: n.kernel_id });
      if (n.url === undefined) { n.url = fill(this.urls.network, { id: n.id }); }
      this.networks.set(n.id, n);
    }

    putInstance(i) {
      i.namespace = i.namespace || fill(this.naming.instance, { kernel_id: i.kernel_id });
      if (i.url === undefined) { i.url = fill(this.urls.instance, { id: i.id }); }
      this.instances.set(i.id, i);
    }

    putRouter(r) {
      if (r.url === undefined) { r.url = fill(this.urls.router, { id: r.id }); }
      this.routers.set(r.id, r);
    }

    removeNetwork(id) {
      var self = this;
      self.networks.delete(id);
      self.subnets.forEach(function (s, sid) { if (s.network === id) { self.subnets.delete(sid); } });
      self.instances.forEach(function (i, iid) { if (i.network === id) { self.instances.delete(iid); } });
      self.leases.forEach(function (l, lid) { if (l.network === id) { self.leases.delete(lid); } });
      self.dhcpServers.delete(id);
    }

    /** Apply one delta; returns false for events this view does not model (still counted for sequence). */
    applyEvent(msg) {
      var d = msg.data || {};
      var kind = msg.event || '';
      this.version += 1;
      if (kind === 'network.created' || kind === 'network.updated') {
        var old = this.networks.get(d.id) || {};
        if (d.dhcp_servers) { this.dhcpServers.set(d.id, d.dhcp_servers); }  // network.created carries them
        this.putNetwork(Object.assign({}, d, { dhcp_namespace: old.dhcp_namespace, url: old.url }));
        if (!this.tenants.has(d.tenant) && msg.tenant !== undefined) {
          this.tenants.set(d.tenant, { kind: 'tenant', id: d.tenant, name: 'tenant ' + d.tenant, slug: '' });
        }
      } else if (kind === 'network.deleted') {
        this.removeNetwork(d.id);
      } else if (kind === 'subnet.created' || kind === 'subnet.updated') {
        this.subnets.set(d.id, d);
      } else if (kind === 'subnet.deleted') {
        this.subnets.delete(d.id);
      } else if (kind === 'instance.created' || kind === 'instance.updated') {
        var prev = this.instances.get(d.id) || {};
        this.putInstance(Object.assign({}, d, { namespace: prev.namespace, url: prev.url }));
      } else if (kind === 'instance.deleted') {
        this.instances.delete(d.id);
      } else if (kind === 'router.created' || kind === 'router.updated') {
        this.putRouter(Object.assign({}, d, { url: (this.routers.get(d.id) || {}).url }));
      } else if (kind === 'router.deleted') {
        this.routers.delete(d.id);
      } else if (kind === 'floating_ip.created' || kind === 'floating_ip.updated') {
        this.floatingIps.set(d.id, d);
      } else if (kind === 'floating_ip.deleted') {
        this.floatingIps.delete(d.id);
      } else if (kind === 'dhcp_servers.updated') {
        this.dhcpServers.set(d.network, d.servers || []);
      } else if (kind === 'node.updated') {
        this.nodes.set(d.name, d);
      } else if (kind.indexOf('lease.') === 0) {
        var lease = Object.assign({}, d);
        delete lease.event;
        if (lease.state === 'active' && (kind === 'lease.added' || kind === 'lease.renewed')) {
          this.leases.set(lease.id, lease);
        } else {
          this.leases.delete(lease.id);
        }
        var ev = (d.event && typeof d.event === 'object') ? d.event : {
          kind: 'lease_event', id: null, subnet: d.subnet, event: kind.slice(6),
          ip_address: d.ip_address, mac_address: d.mac_address, hostname: d.hostname,
          at: new Date((msg.ts || Date.now() / 1000) * 1000).toISOString()
        };
        this.leaseEvents.push(ev);
        if (this.leaseEvents.length > 1000) { this.leaseEvents.splice(0, this.leaseEvents.length - 1000); }
      } else {
        return false;
      }
      return true;
    }

    /** The active lease holding ``ip`` in ``subnetId``, if any. */
    leaseFor(subnetId, ip) {
      var found = null;
      this.leases.forEach(function (l) { if (l.subnet === subnetId && l.ip_address === ip) { found = l; } });
      return found;
    }
  }

  var STATUS_COLOURS = {
    active: '#16a34a', pending: '#7c3aed', error: '#dc2626', deleting: '#6b7280'
  };

  function readConfig(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  /** "1 h 02 m", "3 m 05 s", "12 s", "expired" */
  function countdown(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) { return '—'; }
    if (seconds <= 0) { return 'expired'; }
    var s = Math.floor(seconds);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h > 0) { return h + ' h ' + String(m).padStart(2, '0') + ' m'; }
    if (m > 0) { return m + ' m ' + String(r).padStart(2, '0') + ' s'; }
    return r + ' s';
  }

  window.NetdashLive = {
    LiveSocket: LiveSocket, Store: Store, STATUS_COLOURS: STATUS_COLOURS,
    readConfig: readConfig, esc: esc, fill: fill, countdown: countdown
  };
}());
