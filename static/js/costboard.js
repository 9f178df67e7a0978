// Behaviour every page shares. It lives here, not in the templates: the Content-Security-Policy
// allows scripts from our own origin only, so no inline <script>, onchange= or style= attributes.
(function () {
  "use strict";
  function number(value) {
    var n = parseFloat(value);
    return isFinite(n) ? n : 0;
  }
  // Bars sized by the server's figures: <span data-share="0.25">, data-width / data-left in %.
  function sizeBars() {
    document.querySelectorAll("[data-share]").forEach(function (el) {
      el.style.setProperty("--share", String(number(el.dataset.share)));
    });
    document.querySelectorAll("[data-width]").forEach(function (el) {
      el.style.width = number(el.dataset.width) + "%";
    });
    document.querySelectorAll("[data-left]").forEach(function (el) {
      el.style.left = number(el.dataset.left) + "%";
    });
  }
  // The tenant menu switches as soon as another tenant is picked (its button is for no-JS).
  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }
  // A page that follows a running job reloads itself every few seconds. A script, not
  // <meta http-equiv="refresh">: axe-core counts a timed meta refresh as a critical violation
  // (WCAG 2.2.1), and a script can wait while the reader has keyboard focus inside the page.
  function reloadWhileRunning() {
    var el = document.querySelector("[data-reload-after]");
    if (!el) { return; }
    var seconds = Math.max(1, number(el.dataset.reloadAfter));
    window.setInterval(function () {
      var active = document.activeElement;
      if (!active || active === document.body) { window.location.reload(); }
    }, seconds * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    sizeBars(); autoSubmit(); reloadWhileRunning();
  });
})();
