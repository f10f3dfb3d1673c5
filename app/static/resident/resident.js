// Resident status page: live updates by Server-Sent Events, polling the JSON every 5 s when
// EventSource is missing or keeps failing. The page is complete without this script.
(function () {
  "use strict";
  var root = document.getElementById("live");
  if (!root) { return; }
  var jsonUrl = root.getAttribute("data-json-url");
  var eventsUrl = root.getAttribute("data-events-url");
  var version = root.getAttribute("data-version");
  var asked = root.getAttribute("data-asked") === "true";
  var pollTimer = null;

  function byId(id) { return document.getElementById(id); }
  function setText(id, text) {
    var el = byId(id);
    if (!el) { return; }
    el.textContent = text || "";
    el.hidden = !text;
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function replaceChildren(parent, children) {
    while (parent.firstChild) { parent.removeChild(parent.firstChild); }
    children.forEach(function (c) { parent.appendChild(c); });
  }

  function render(s) {
    if (!s || s.version === version) { return; }
    version = s.version;
    root.setAttribute("data-version", version);
    byId("ticket-number").textContent = s.ticket.label;
    byId("headline").textContent = s.headline;
    setText("position", s.ticket.position_text);
    setText("wait", s.ticket.wait_text);

    var back = s.come_back.map(function (item) {
      var li = el("li");
      li.appendChild(el("strong", null, item.where));
      if (item.reason) {
        var r = el("span", "reason", item.reason);
        if (item.reason_html) { r.innerHTML = item.reason_html; }
        li.appendChild(r);
      }
      return li;
    });
    replaceChildren(byId("come-back-list"), back);
    byId("come-back").hidden = back.length === 0;

    var steps = s.steps.map(function (step) {
      var later = step.status === "pending" && !step.startable;
      var li = el("li", "step step-" + step.status + (later ? " step-later" : ""));
      li.setAttribute("data-department", step.department);
      li.appendChild(el("p", "dept", step.department_name));
      li.appendChild(el("p", "where", (step.location + " " + step.counters_text).trim()));
      li.appendChild(el("p", "badge", step.status_text));
      if (step.wait_text) { li.appendChild(el("p", "step-wait", step.wait_text)); }
      if (step.applications.length) {
        var ul = el("ul", "apps");
        step.applications.forEach(function (t, i) {
          var a = el("li", null, t);
          // Furigana (やさしい日本語) come as HTML the server built from escaped text.
          if (step.applications_html) { a.innerHTML = step.applications_html[i]; }
          ul.appendChild(a);
        });
        li.appendChild(ul);
      }
      return li;
    });
    replaceChildren(byId("steps-list"), steps);
    byId("steps-empty").hidden = steps.length > 0;

    var groups = [];
    (s.document_groups || []).forEach(function (g) {
      groups.push(el("h3", null, g.title));
      var ul = el("ul", "docs");
      g.items.forEach(function (t, i) {
        var li = el("li", null, t);
        if (g.items_html) { li.innerHTML = g.items_html[i]; }
        ul.appendChild(li);
      });
      groups.push(ul);
    });
    replaceChildren(byId("documents-groups"), groups);
    byId("documents").hidden = groups.length === 0;
    setText("documents-note", s.documents_note);

    // The satisfaction form is rendered by the server (it works without JavaScript): fetch it.
    if (s.satisfaction.asked && !asked) { asked = true; window.location.reload(); }
  }

  function poll() {
    if (pollTimer) { return; }
    var etag = null;
    var tick = function () {
      // The status is not stored (no-store): send its ETag back ourselves; 304 means nothing changed.
      var headers = { "Accept": "application/json" };
      if (etag) { headers["If-None-Match"] = etag; }
      fetch(jsonUrl, { headers: headers, cache: "no-store", credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 304 || !r.ok) { return null; }
          etag = r.headers.get("ETag");
          return r.json();
        })
        .then(function (s) { if (s) { render(s); } })
        .catch(function () { /* offline for a moment: try again on the next tick */ });
    };
    tick();
    pollTimer = window.setInterval(tick, 5000);
  }

  if (!window.EventSource) { poll(); return; }
  var failures = 0;
  var source = new EventSource(eventsUrl);
  source.addEventListener("status", function (e) {
    failures = 0;
    try { render(JSON.parse(e.data)); } catch (err) { /* ignore a malformed message */ }
  });
  source.addEventListener("gone", function () { source.close(); });
  source.onerror = function () {
    failures += 1;
    // The browser reconnects by itself; after repeated failures (a proxy that buffers, a closed
    // port) fall back to polling for good.
    if (failures >= 3 || source.readyState === EventSource.CLOSED) {
      source.close();
      poll();
    }
  };
})();
