// Draw every figure the server embedded: <div data-figure="ID"> + <script id="ID" type="application/json">.
(function () {
  "use strict";
  var NARROW = 560;  // px: a phone's chart
  var LABEL = 28;  // characters of a bar's name on the axis; the hover shows all of it
  // A 64-character model or feature name would take most of a horizontal bar chart's width:
  // the axis shows its start, the tooltip the whole name.
  function shortenBarLabels(figure) {
    var bars = figure.data.filter(function (t) { return t.orientation === "h"; });
    if (!bars.length) { return; }
    var names = bars[0].y || [];
    var shown = names.map(function (n) {
      n = String(n);
      return n.length > LABEL ? n.slice(0, LABEL - 1) + "\u2026" : n;
    });
    figure.layout.yaxis = Object.assign({}, figure.layout.yaxis, {
      tickmode: "array", tickvals: names, ticktext: shown
    });
  }
  function clip(text, chars) {
    return text.length > chars ? text.slice(0, chars - 1) + "\u2026" : text;
  }
  // On a phone the mode bar would cover the title and a legend under the x axis would cover
  // its dates: no mode bar (see draw), the title cut to the width, and the legend at the foot
  // of the chart with room kept for it under the dates.
  function fitNarrow(layout, data, width) {
    var title = layout.title && layout.title.text;
    if (title) {
      layout.title = Object.assign({}, layout.title, { text: clip(String(title), Math.floor((width - 24) / 7.5)) });
    }
    if (!layout.legend || layout.showlegend === false) { return; }
    var rows = 1, used = 0;
    data.forEach(function (trace) {
      if (trace.showlegend === false || !trace.name) { return; }
      var entry = String(trace.name).length * 6 + 44;  // px at font size 11
      if (used && used + entry > width - 24) { rows += 1; used = 0; }
      used += entry;
    });
    layout.legend = Object.assign({}, layout.legend, {
      yref: "container", y: 0, yanchor: "bottom", font: { size: 11 }
    });
    var margin = layout.margin || {};
    layout.margin = Object.assign({}, margin, { b: (margin.b || 40) + 20 + rows * 19 });
  }
  function draw() {
    document.querySelectorAll("[data-figure]").forEach(function (node) {
      var source = document.getElementById(node.dataset.figure);
      if (!source || !window.Plotly) { return; }
      var figure = JSON.parse(source.textContent);
      // On a phone the mode bar would cover the title and a legend under the x axis would
      // cover its dates: no mode bar, and the legend at the foot of the chart instead.
      shortenBarLabels(figure);
      var narrow = node.clientWidth < NARROW;
      if (narrow) { fitNarrow(figure.layout, figure.data, node.clientWidth); }
      window.Plotly.newPlot(node, figure.data, figure.layout, {
        responsive: true, displaylogo: false, displayModeBar: !narrow,
        modeBarButtonsToRemove: ["lasso2d", "select2d"]
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
