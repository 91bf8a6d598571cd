/* The failover lab's page: each "lab-notice" (dispatched by lab.js with every node's observation) fills the node
 * table — dnsmasq, VXLAN (VNI and flood list), MACs learned behind the tunnel, the client's lease and events.
 * The fail / restore buttons post with fetch (same CSRF form fields as without script), then ask lab.js for fresh
 * notices for a while, so the kernel's answer (the renewal from the survivor, dnsmasq back) appears without a
 * reload; a notice that comes back with an error (an agent busy, the lab still building) is asked for again.
 * The "restored" step is checked once a restore was asked for here and every server's dnsmasq runs.
 * Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;
  var lab = window.NetdashLab;
  if (!L || !lab) { return; }
  var restoreAsked = false;
  var polling = null;

  function set(row, field, text) {
    var el = row.querySelector('[data-fo="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  function fill(row, seen) {
    if (!seen) { ['dnsmasq', 'tunnel', 'learned', 'client'].forEach(function (f) { set(row, f, '—'); }); return; }
    set(row, 'dnsmasq', seen.dnsmasq_pid ? 'running, pid ' + seen.dnsmasq_pid : 'none');
    var t = seen.tunnel;
    set(row, 'tunnel', !seen.segment ? 'no segment' : !t ? 'no VXLAN' :
      t.dev + ' VNI ' + t.vni + ' → ' + ((t.flood || []).join(', ') || 'nobody'));
    set(row, 'learned', t && t.learned && t.learned.length ? t.learned.join(', ') : '—');
    var c = seen.client;
    if (!c) { set(row, 'client', '—'); return; }
    var lease = c.lease ? c.lease.ip + ' from ' + c.lease.server_id : 'no lease';
    var events = (c.events || []).slice(-4).map(function (e) { return e.event; }).join(', ');
    set(row, 'client', lease + (events ? ' · events: ' + events : ''));
  }

  var retries = 0;
  var RETRY_MS = 3000;
  var MAX_RETRIES = 100;  // a busy or restarting agent answers later: ask again, but not forever

  document.addEventListener('lab-notice', function (ev) {
    var data = ev.detail || {};
    if (data.error && retries < MAX_RETRIES) {
      retries += 1;
      setTimeout(lab.refresh, RETRY_MS);
    } else if (!data.error) {
      retries = 0;
    }
    var byNode = {};
    (data.nodes || []).forEach(function (n) { byNode[n.node] = n; });
    document.querySelectorAll('[data-fo-node]').forEach(function (row) { fill(row, byNode[row.dataset.foNode]); });
    var keys = Object.keys(data.facts || {});
    document.querySelectorAll('[data-fo-restored]').forEach(function (li) {
      var wanted = li.dataset.foRestored.split(/\s+/).filter(Boolean);
      if (restoreAsked && wanted.length && wanted.every(function (w) { return keys.indexOf(w) >= 0; })) {
        lab.step(li.dataset.step, true);
      }
    });
  });

  /** Fresh notices every 1.5 s for a while: the kill, the renewal and a restart take a few seconds each. */
  function pollNotices(seconds) {
    var until = Date.now() + seconds * 1000;
    if (polling) { clearInterval(polling); }
    lab.refresh();
    polling = setInterval(function () {
      if (Date.now() > until) { clearInterval(polling); polling = null; return; }
      lab.refresh();
    }, 1500);
  }

  document.querySelectorAll('[data-fo-action]').forEach(function (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var status = document.getElementById('lab-action-status');
      var restoring = form.action.indexOf('/restore/') >= 0;
      status.textContent = restoring ? 'restoring…' : 'failing the server…';
      fetch(form.action, { method: 'POST', body: new FormData(form), credentials: 'same-origin',
                           headers: { Accept: 'application/json' } })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          status.textContent = answer.ok ? answer.message : answer.error;
          if (answer.ok) {
            if (restoring) { restoreAsked = true; }
            pollNotices(60);
          }
        })
        .catch(function () { status.textContent = 'the request failed; try again'; });
    });
  });
}());
