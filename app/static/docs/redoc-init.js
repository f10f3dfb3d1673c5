// Starts ReDoc on /redoc from the vendored bundle (no CDN, no web fonts, no inline script).
"use strict";
(function () {
  var node = document.getElementById("redoc");
  Redoc.init(node.getAttribute("data-openapi-url"), {hideDownloadButton: false, expandResponses: "200,201"}, node);
})();
