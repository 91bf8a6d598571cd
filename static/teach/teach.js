// Teaching tools: live refresh of inspector fragments, copy buttons, diagnostics over a websocket.
(function () {
  "use strict";

  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  // --- live refresh: [data-refresh] containers are re-fetched every 3 s while the toggle is on ------------
  var toggle = document.querySelector("[data-refresh-toggle]");
  document.querySelectorAll("[data-refresh]").forEach(function (box) {
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden || (toggle && !toggle.checked)) return;
      busy = true;
      fetch(box.dataset.refresh, { credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) { box.innerHTML = html; })
        .catch(function () {})
        .finally(function () { busy = false; });
    }, 3000);
  });

  // --- copy buttons -------------------------------------------------------------------------------------
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var src = document.querySelector(btn.dataset.copy);
    if (!src) return;
    var text = src.textContent;
    var done = function () { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done);
    } else {
      var range = document.createRange();
      range.selectNodeContents(src);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
    }
  });

  // --- diagnostics ----------------------------------------------------------------------------------------
  document.querySelectorAll("[data-diag-ws]").forEach(function (panel) {
    var form = panel.querySelector(".diag-form");
    var out = panel.querySelector(".diag-output");
    var status = panel.querySelector(".diag-status");
    var args = panel.querySelector(".diag-args");
    var select = form.elements.action;
    var sock = null;

    function show(text, cls) {
      var span = document.createElement("span");
      if (cls) span.className = cls;
      span.textContent = text + "\n";
      out.appendChild(span);
      out.scrollTop = out.scrollHeight;
    }
    function syncArgs() {
      args.hidden = !select.selectedOptions[0].hasAttribute("data-target");
    }
    function connect() {
      sock = new WebSocket(wsUrl(panel.dataset.diagWs));
      sock.onopen = function () { status.textContent = "connected"; };
      sock.onclose = function () { status.textContent = "disconnected"; sock = null; };
      sock.onmessage = function (ev) {
        var m = JSON.parse(ev.data);
        if (m.type === "line") show(m.text, m.stream === "out" ? "" : m.stream);
        else if (m.type === "done") { show("[exit " + (m.exit_code === null ? "error" : m.exit_code) + "]", "done"); status.textContent = "done"; }
        else if (m.type === "error") { show(m.message, "err"); status.textContent = ""; }
        else if (m.type === "accepted") status.textContent = "running…";
      };
    }
    select.addEventListener("change", syncArgs);
    syncArgs();
    connect();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!sock || sock.readyState !== WebSocket.OPEN) { connect(); status.textContent = "reconnecting — try again"; return; }
      var msg = { type: "run", action: select.value, args: {} };
      if (!args.hidden) msg.args = { target: form.elements.target.value, count: form.elements.count.value };
      sock.send(JSON.stringify(msg));
    });
  });
})();
