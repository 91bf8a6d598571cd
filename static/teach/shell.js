// The namespace shell: xterm.js (vendored) relayed over the teach shell websocket.
(function () {
  "use strict";
  var box = document.getElementById("terminal");
  var status = document.getElementById("shell-status");
  if (!box || !window.Terminal) return;
  var term = new window.Terminal({ cols: 100, rows: 28, convertEol: false, cursorBlink: true });
  term.open(box);
  window.teachTerminal = term; // for tests and the curious
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + box.dataset.shellWs;
  var sock = new WebSocket(url);
  function send(obj) { if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify(obj)); }
  sock.onmessage = function (ev) {
    var m = JSON.parse(ev.data);
    if (m.type === "output") term.write(m.data);
    else if (m.type === "status") status.textContent = m.text;
    else if (m.type === "ready") {
      status.textContent = "connected — time limit " + Math.round(m.limit / 60) + " min";
      box.dataset.ready = "1";
      send({ type: "resize", rows: term.rows, cols: term.cols });
      term.focus();
    } else if (m.type === "closed") { status.textContent = "session ended: " + m.reason; box.dataset.closed = "1"; }
  };
  sock.onclose = function (ev) {
    if (!box.dataset.closed) status.textContent = ev.code === 4403 ? "refused" : "disconnected";
  };
  // A paste arrives as one string: send it in pieces that fit the server's 4 KiB frame limit even when JSON
  // escapes every character to six bytes (tenants/websocket.py).
  var CHUNK = 512;
  term.onData(function (data) {
    for (var i = 0; i < data.length; i += CHUNK) send({ type: "input", data: data.slice(i, i + CHUNK) });
  });
})();
