// Draws every chart on the page: each <script type="application/json" data-chart="ID"> holds
// a figure ({data, layout, config}, made by loyalty/dashboard/charts.py) for the element ID.
// No inline script and no eval, so a strict Content-Security-Policy can allow this file and
// plotly.js (served by the app) alone. Without JavaScript the tables beside the charts stay
// open; once a chart is drawn its table folds away under "The numbers".
(function () {
  "use strict";
  // On a phone a bar chart's long labels would leave its bars no room: shorter labels
  // (made by the server, escaped like the rest), and each value inside its bar where it
  // fits (level, never turned on its side), else past its end.
  function narrow(target, figure) {
    var meta = figure.layout && figure.layout.meta;
    if (!meta || !meta.narrow_ticktext || target.clientWidth >= 480) return;
    figure.layout.yaxis.ticktext = meta.narrow_ticktext;
    figure.data.forEach(function (trace) {
      if (trace.type === "bar") {
        trace.textposition = "auto";
        trace.textangle = 0;
      }
    });
  }
  function draw() {
    if (!window.Plotly) return;
    var tags = document.querySelectorAll('script[type="application/json"][data-chart]');
    Array.prototype.forEach.call(tags, function (tag) {
      var target = document.getElementById(tag.getAttribute("data-chart"));
      if (!target) return;
      var figure;
      try {
        figure = JSON.parse(tag.textContent);
      } catch (e) {
        return;
      }
      narrow(target, figure);
      window.Plotly.newPlot(target, figure.data, figure.layout, figure.config || {}).then(
        function () {
          target.classList.add("chart-drawn");
          // A point with a link (customdata, a path on this site) leads to what is behind it.
          target.on("plotly_click", function (event) {
            var link = event.points && event.points[0] && event.points[0].customdata;
            if (typeof link === "string" && link.charAt(0) === "/" && link.charAt(1) !== "/") {
              window.location.assign(link);
            }
          });
          // Drawn: the table of its numbers folds away (still one click, or key, away).
          var figureElement = target.closest("figure");
          if (!figureElement) return;
          var table = figureElement.querySelector("details.chart-table");
          var fallback = figureElement.querySelector(".chart-fallback");
          if (table) table.open = false;
          if (fallback) fallback.hidden = true;
        }
      );
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
