// The ticket prints itself once when it opens (a reload does not print again); the button reprints.
(function () {
  "use strict";
  var button = document.getElementById("print");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
  var key = "printed:" + window.location.pathname;
  try {
    if (!window.sessionStorage.getItem(key)) {
      window.sessionStorage.setItem(key, "1");
      window.setTimeout(function () { window.print(); }, 300);
    }
  } catch (e) { /* private mode: print by the button */ }
})();
