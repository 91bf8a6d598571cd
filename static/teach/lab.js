/* The lab page, live: both lab tenants' live websockets (NetdashLive.LiveSocket + Store from live/live.js) keep
 * statuses and addresses current; "what to notice" is read from the kernel (the lab's notice URL: the agent
 * inspects both instance namespaces and compares them) whenever the instances change, and after the ping button
 * ran its pings over the diagnostics websockets. Steps ([data-step]) are checked off by the notice's keys: each
 * word of data-step-facts must match a key (exactly, or as the prefix before ":"). In the routed lab the routers'
 * statuses (router.* events on the same sockets) are part of what must be up before the kernel is read.
 * Each notice is also dispatched as a "lab-notice" event on document, for pages that show more of it; such pages
 * may ask for a fresh notice (window.NetdashLab.refresh). With config.sticky_steps a step once done stays checked.
 * Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;
  var config = L && L.readConfig('lab-config');
  if (!config) { return; }
  var stores = config.tenants.map(function () { return new L.Store({}); });
  var notice = { busy: false, again: false, key: '' };
  var routers = config.routers || {};

  function find(kind, id) {
    for (var i = 0; i < stores.length; i++) {
      var found = stores[i][kind].get(id);
      if (found) { return found; }
    }
    return null;
  }

  function badge(el, status) {
    var cls = 'badge ' + status;
    if (el.className !== cls) { el.className = cls; }
    if (el.textContent !== status) { el.textContent = status; }
  }

  function step(name, done) {
    document.querySelectorAll('[data-step="' + name + '"]').forEach(function (li) {
      if (!done && config.sticky_steps && li.dataset.done) { return; }  // a step done once stays checked off
      li.classList.toggle('done', done);
      if (done) { li.dataset.done = '1'; } else { delete li.dataset.done; }
    });
  }

  function instances() { return config.instances.map(function (id) { return find('instances', id); }); }

  function render() {
    document.querySelectorAll('[data-network-id]').forEach(function (el) {
      var n = find('networks', +el.dataset.networkId);
      var b = el.querySelector('[data-field="status"]');
      if (b) { badge(b, n ? n.status : 'deleted'); }
    });
    document.querySelectorAll('[data-instance-id][data-field]').forEach(function (el) {
      var i = find('instances', +el.dataset.instanceId);
      if (el.dataset.field === 'status') { badge(el, i ? i.status : 'deleted'); }
      else if (i && el.textContent !== (i.ip_address || '')) { el.textContent = i.ip_address || ''; }
    });
    var all = instances();
    document.querySelectorAll('[data-router-id]').forEach(function (el) {
      badge(el, routers[el.dataset.routerId] || 'deleted');
    });
    var routerIds = Object.keys(routers);
    var built = all.length > 0 && all.every(function (i) { return i && i.status === 'active' && i.ip_address; }) &&
      routerIds.every(function (id) { return routers[id] === 'active'; });
    step('built', built);
    // Ask the kernel again whenever what the instances hold changed (status, address, MAC), or a router's status.
    var key = all.map(function (i) { return i ? [i.status, i.ip_address, i.mac_address].join('/') : '-'; }).join(' ') +
      ' ' + routerIds.map(function (id) { return routers[id]; }).join(' ');
    if (built && key !== notice.key) { notice.key = key; refreshNotice(); }
    document.body.dataset.labRendered = String((+document.body.dataset.labRendered || 0) + 1);
  }

  function showNotice(data) {
    var facts = data.facts || {};
    var keys = Object.keys(facts);
    var list = document.querySelector('[data-notice-facts]');
    list.innerHTML = keys.map(function (k) {
      return '<li data-fact="' + L.esc(k) + '">' + L.esc(facts[k]) + '</li>';
    }).join('');
    var empty = document.querySelector('[data-notice-empty]');
    empty.hidden = keys.length > 0;
    if (data.error) { empty.textContent = data.error; }
    document.dispatchEvent(new CustomEvent('lab-notice', { detail: data }));
    document.querySelectorAll('[data-step-facts]').forEach(function (li) {
      var wanted = li.dataset.stepFacts.split(/\s+/).filter(Boolean);
      step(li.dataset.step, wanted.length > 0 && wanted.every(function (w) {
        return keys.some(function (k) { return k === w || k.indexOf(w + ':') === 0; });
      }));
    });
  }

  /** One request at a time; a change meanwhile asks once more when it returns. */
  function refreshNotice() {
    if (notice.busy) { notice.again = true; return; }
    notice.busy = true;
    fetch(config.notice_url, { credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(showNotice)
      .catch(function () {})
      .finally(function () {
        notice.busy = false;
        if (notice.again) { notice.again = false; refreshNotice(); }
      });
  }

  function pingBoth() {
    var status = document.getElementById('lab-ping-status');
    var left = config.diag_ws.length;
    status.textContent = 'pinging…';
    config.diag_ws.forEach(function (path) {
      var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
      var ws = new WebSocket(scheme + window.location.host + path);
      ws.onmessage = function (ev) {
        var msg = JSON.parse(ev.data);
        if (msg.type === 'hello') {
          ws.send(JSON.stringify({ type: 'run', action: 'ping', args: { target: config.dhcp_address, count: 2 } }));
        } else if (msg.type === 'done' || msg.type === 'error') {
          ws.close();
        }
      };
      ws.onclose = function () {
        left -= 1;
        if (left === 0) { status.textContent = 'done'; refreshNotice(); }
      };
    });
  }
  window.NetdashLab = { refresh: refreshNotice, step: step };  // for pages that act on the lab (failover_lab.js)

  var ping = document.getElementById('lab-ping');
  if (ping) { ping.addEventListener('click', pingBoth); }
  var reach = document.getElementById('lab-reach');
  if (reach) { reach.addEventListener('click', refreshNotice); }

  var states = config.tenants.map(function () { return 'connecting'; });
  config.tenants.forEach(function (t, n) {
    var socket = new L.LiveSocket(t.ws_path, {
      snapshot: function (snap) { stores[n].loadSnapshot(snap); render(); },
      event: function (msg) {
        var d = msg.data || {};
        if ((msg.event || '').indexOf('router.') === 0 && routers[d.id] !== undefined) {
          routers[d.id] = msg.event === 'router.deleted' ? 'deleted' : d.status;
        }
        stores[n].applyEvent(msg);
        render();
        // The IPv6 lab's DHCPv6 lease can come after the instance is active: its lease row is a finding too.
        if (config.refresh_on_lease && notice.key && (msg.event || '').indexOf('lease.') === 0) { refreshNotice(); }
      },
      status: function (state) {
        states[n] = state;
        var all = states.every(function (s) { return s === 'live'; });
        document.querySelectorAll('[data-live-status]').forEach(function (el) {
          el.className = 'live-status ' + (all ? 'live' : state);
          el.textContent = all ? 'live' : state;
        });
      }
    });
    socket.start();
  });
}());
