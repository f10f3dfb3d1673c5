// The pre-entry hand-off screen: once the counter has taken the code, show the "handed over" page.
// Nothing is kept in the browser's storage; the check sends only the phone's own cookie.
(function () {
  "use strict";
  const box = document.getElementById("handoff");
  if (!box) return;
  const url = box.dataset.stateUrl;
  async function check() {
    try {
      const res = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (res.ok) {
        const body = await res.json();
        if (body.state !== "open") { window.location.replace("/pre/done"); return; }
      }
    } catch (e) { /* offline for a moment: try again */ }
    window.setTimeout(check, 3000);
  }
  window.setTimeout(check, 3000);
})();
