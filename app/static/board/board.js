// Waiting-room board: live by Server-Sent Events, polling every 5 s if they fail.
(function () {
  "use strict";
  var root = document.getElementById("board");
  if (!root) { return; }
  var version = root.getAttribute("data-version");
  var pollTimer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function fill(id, items, build) {
    var list = document.getElementById(id);
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) { list.appendChild(build(item)); });
  }
  function render(b) {
    if (!b || b.version === version) { return; }
    version = b.version;
    fill("calling", b.calling, function (item) {
      var li = el("li");
      li.appendChild(el("span", "num", item.label));
      var arrow = el("span", "arrow", "→"); arrow.setAttribute("aria-hidden", "true"); li.appendChild(arrow);
      li.appendChild(el("span", "counter", item.counter_text));
      if (item.queue) { li.appendChild(el("span", "queue", item.queue_name)); }
      return li;
    });
    fill("recent", b.recent, function (item) {
      var li = el("li");
      li.appendChild(el("span", "num", item.label));
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "counter", item.counter_text));
      return li;
    });
    document.getElementById("none").hidden = b.calling.length > 0;
    document.getElementById("waiting").textContent = b.waiting_text;
  }
  function poll() {
    if (pollTimer) { return; }
    var url = root.getAttribute("data-json-url");
    var tick = function () {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(render)
        .catch(function () { /* try again next tick */ });
    };
    tick();
    pollTimer = window.setInterval(tick, 5000);
  }
  if (!window.EventSource) { poll(); return; }
  var failures = 0;
  var source = new EventSource(root.getAttribute("data-events-url"));
  source.addEventListener("board", function (e) {
    failures = 0;
    try { render(JSON.parse(e.data)); } catch (err) { /* ignore */ }
  });
  source.onerror = function () {
    failures += 1;
    if (failures >= 3 || source.readyState === EventSource.CLOSED) { source.close(); poll(); }
  };
})();
