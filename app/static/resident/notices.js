// Opt in to Web Push from the phone page: register the service worker, subscribe with the city's
// VAPID key, send the subscription to the server. The button only shows where push is supported.
(function () {
  "use strict";
  var button = document.getElementById("push-button");
  if (!button || !("serviceWorker" in navigator) || !("PushManager" in window)) { return; }
  button.hidden = false;
  function b64ToBytes(text) {
    var pad = "=".repeat((4 - text.length % 4) % 4);
    var raw = window.atob((text + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  button.addEventListener("click", function () {
    button.disabled = true;
    fetch(button.getAttribute("data-key-url"), { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        return navigator.serviceWorker.register("/static/resident/sw.js").then(function (reg) {
          return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64ToBytes(data.public_key) });
        });
      })
      .then(function (subscription) {
        return fetch(button.getAttribute("data-url"), {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(subscription)
        });
      })
      .then(function (r) {
        if (!r.ok) { throw new Error("subscribe failed"); }
        button.hidden = true;
        document.getElementById("push-ok").hidden = false;
      })
      .catch(function () { button.disabled = false; });
  });
})();
