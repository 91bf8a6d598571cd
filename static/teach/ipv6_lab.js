/* The three-modes IPv6 lab's columns: each "lab-notice" (dispatched by lab.js with the agent's observations) fills
 * every mode's RA flags, addresses with their origin, DHCPv6 client, lease rows and the findings keyed to that
 * mode (":<mode>"); a finding that does not hold ("no_…" key) is marked as such. Plain ES2017, no build step.
 */
(function () {
  'use strict';
  var L = window.NetdashLive;

  function fill(col, side, facts) {
    var mode = col.dataset.v6Mode;
    var ra = side && side.ra;
    col.querySelector('[data-v6="ra"]').textContent = !side ? '—' : !ra ? 'no RA heard' :
      'M=' + ra.M + ' O=' + ra.O + ra.prefixes.map(function (p) {
        return ' · ' + p.prefix + ' L=' + p.L + ' A=' + p.A;
      }).join('');
    col.querySelector('[data-v6="addresses"]').innerHTML = (side ? side.addresses : []).map(function (a) {
      return '<tr><td class="mono">' + L.esc(a.address + '/' + a.prefixlen) + '</td><td class="origin">' +
        L.esc(a.origin) + '</td></tr>';
    }).join('');
    col.querySelector('[data-v6="client"]').textContent = !side ? '—' : !side.client ? 'none' :
      side.client.program + (side.client.pid ? ': pid ' + side.client.pid : ': not running');
    col.querySelector('[data-v6="leases"]').innerHTML = (side ? side.leases : []).map(function (ip) {
      return '<li>' + L.esc(ip) + '</li>';
    }).join('') || '<li class="muted">none</li>';
    col.querySelector('[data-v6="facts"]').innerHTML = Object.keys(facts).filter(function (k) {
      return k.slice(k.indexOf(':') + 1) === mode;
    }).map(function (k) {
      var no = k.indexOf('no_') === 0;
      return '<li data-fact="' + L.esc(k) + '"' + (no ? ' class="fact-no">not holding: ' : '>') +
        L.esc(facts[k]) + '</li>';
    }).join('');
  }

  document.addEventListener('lab-notice', function (ev) {
    var data = ev.detail || {};
    var sides = {};
    (data.sides || []).forEach(function (s) { sides[s.mode] = s; });
    document.querySelectorAll('[data-v6-mode]').forEach(function (col) {
      fill(col, sides[col.dataset.v6Mode], data.facts || {});
    });
  });
}());
