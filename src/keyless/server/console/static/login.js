// Keyless console sign-in: `keyless console` opens /console/login#CODE. The fragment never leaves
// the browser in a request line; move it into the form, drop it from the address bar and history,
// and post it. Also when a new link is opened in a tab already on this page (only the fragment
// changes, so the page does not reload). No inline script: this file is served by Keyless under a
// strict CSP.
"use strict";
function keylessSignIn() {
  var code = window.location.hash.slice(1);
  if (!code) { return; }
  history.replaceState(null, "", window.location.pathname);
  document.getElementById("code").value = decodeURIComponent(code);
  document.getElementById("login").submit();
}
document.addEventListener("DOMContentLoaded", keylessSignIn);
window.addEventListener("hashchange", keylessSignIn);
