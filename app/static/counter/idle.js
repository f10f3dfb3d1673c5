// An unattended tablet must not keep a household's data on screen: after the session's idle time
// without input, leave for the login page (the server has ended the session by then as well).
"use strict";
(function () {
  const minutes = parseInt(document.body.dataset.idleMinutes || "0", 10);
  if (!minutes) return;
  let last = Date.now();
  ["pointerdown", "keydown", "input", "scroll"].forEach((t) => window.addEventListener(t, () => { last = Date.now(); }, { passive: true }));
  setInterval(() => {
    if (Date.now() - last > minutes * 60000) {
      // An idle logout also clears this tablet's drafts (they may hold My Numbers); the login page's
      // Clear-Site-Data header does the same for browsers that honour it.
      try {
        Object.keys(localStorage).filter((k) => k.startsWith("kakanai:")).forEach((k) => localStorage.removeItem(k));
        sessionStorage.clear();
      } catch (e) { /* storage disabled */ }
      window.location.href = "/login?expired=1&next=" + encodeURIComponent(location.pathname);
    }
  }, 15000);
})();
