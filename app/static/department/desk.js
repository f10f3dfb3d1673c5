// Department screen: refresh the columns every 4 s when something changed (the page works without it).
(function () {
  "use strict";
  var root = document.getElementById("desk");
  if (!root) { return; }
  var url = root.getAttribute("data-json-url");
  function busy() {
    // Never replace the columns under a clerk who is typing a reason or has a form open.
    var active = document.activeElement;
    if (active && root.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) { return true; }
    return root.querySelector("details[open]") !== null;
  }
  function tick() {
    if (busy()) { return; }
    var version = root.getAttribute("data-version");
    fetch(url + "?v=" + encodeURIComponent(version), { cache: "no-store", credentials: "same-origin",
                                                        headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data || !data.html || data.version === root.getAttribute("data-version") || busy()) { return; }
        root.innerHTML = data.html;
        root.setAttribute("data-version", data.version);
        var stamp = document.getElementById("desk-updated");
        if (stamp) { stamp.textContent = "更新しました " + new Date().toLocaleTimeString("ja-JP"); }
      })
      .catch(function () { /* try again on the next tick */ });
  }
  window.setInterval(tick, 4000);
})();
