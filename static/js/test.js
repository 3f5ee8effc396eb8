// Optional comfort on the test pages; everything works without it.
// Measures the answer time, and prevents a second submit on a slow network.
(function () {
  "use strict";
  var form = document.getElementById("item-form");
  if (!form) { return; }
  var shown = Date.now();
  var sent = false;
  form.addEventListener("submit", function (event) {
    if (sent) { event.preventDefault(); return; }
    sent = true;
    var field = document.getElementById("response-ms");
    if (field) { field.value = String(Date.now() - shown); }
    var button = form.querySelector("button[type=submit]");
    if (button) { button.setAttribute("aria-busy", "true"); button.disabled = true; }
  });
}());
