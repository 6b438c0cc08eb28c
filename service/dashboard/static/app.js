// Foresight dashboard: draw every chart from its JSON spec, and refresh pages that watch a running job.
(function () {
  "use strict";
  function drawCharts() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll(".chart[data-figure]").forEach(function (div) {
      var spec = document.getElementById(div.getAttribute("data-figure"));
      if (!spec) { return; }
      var figure = JSON.parse(spec.textContent);
      var config = { responsive: true, displaylogo: false };
      Plotly.newPlot(div, figure.data, figure.layout, config);
    });
  }
  function scheduleRefresh() {
    var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
    if (every > 0) { window.setTimeout(function () { window.location.reload(); }, every); }
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); scheduleRefresh(); });
})();
