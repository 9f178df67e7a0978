// Draw every figure the server embedded: <div data-figure="ID"> + <script id="ID" type="application/json">.
(function () {
  "use strict";
  function draw() {
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var source = document.getElementById(node.dataset.figure);
      if (!source || !window.Plotly) { return; }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(node, figure.data, figure.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"]
      }).then(function () { node.dataset.rendered = "true"; });
    });
  }
  function toggleCustom() {
    var range = document.getElementById("f-range");
    var custom = document.querySelectorAll(".custom-range");
    if (!range) { return; }
    custom.forEach(function (el) { el.hidden = range.value !== "custom"; });
    range.addEventListener("change", function () {
      custom.forEach(function (el) { el.hidden = range.value !== "custom"; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(); toggleCustom(); });
})();
