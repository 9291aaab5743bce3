// Keyless console sign-in: `keyless console` opens /console/login#CODE. The fragment never leaves
// the browser in a request line; move it into the form, drop it from the address bar and history,
// and post it. No inline script: this file is served by Keyless under a strict CSP.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var code = window.location.hash.slice(1);
  if (!code) { return; }
  history.replaceState(null, "", window.location.pathname);
  var form = document.getElementById("login");
  document.getElementById("code").value = decodeURIComponent(code);
  form.submit();
});
