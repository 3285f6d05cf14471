// overair console: shows slider values and draws the charts from the JSON the page embeds.
// Pages work without this script; it only adds the live slider value and the chart canvases.
"use strict";

(function () {
  const palette = ["#0b5cad", "#b42318", "#11663a", "#7a4b00", "#6941c6", "#0e7490", "#9d174d", "#374151"];

  function syncRanges() {
    document.querySelectorAll("input[type=range]").forEach(function (range) {
      const output = document.querySelector("output[for='" + range.id + "']");
      if (!output) return;
      const show = function () { output.textContent = range.value + "%"; };
      range.addEventListener("input", show);
      show();
    });
  }

  function drawCharts() {
    const source = document.getElementById("chart-data");
    if (!source) return;
    const figures = document.querySelectorAll("figure[data-chart]");
    if (typeof window.Chart === "undefined") {
      figures.forEach(function (figure) {
        const status = figure.querySelector("[data-chart-status]");
        if (status) status.textContent = "The chart library is not available: run make console-assets on the server. The numbers are below.";
      });
      return;
    }
    const data = JSON.parse(source.textContent);
    figures.forEach(function (figure) {
      const key = figure.dataset.chart;
      const chart = data[key];
      const canvas = figure.querySelector("canvas");
      const status = figure.querySelector("[data-chart-status]");
      if (!chart || !canvas) return;
      const empty = !chart.series.some(function (s) { return s.values.some(function (v) { return v; }); });
      const line = figure.dataset.kind === "line";
      new window.Chart(canvas, {
        type: line ? "line" : "bar",
        data: {
          labels: chart.x,
          datasets: chart.series.map(function (s, i) {
            return {
              label: s.name, data: s.values, borderColor: palette[i % palette.length],
              backgroundColor: palette[i % palette.length], borderWidth: line ? 2 : 0, pointRadius: line ? 2 : 0,
            };
          }),
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" } },
        },
      });
      figure.classList.add("drawn");
      if (empty && status) {
        status.textContent = figure.dataset.empty || "No data yet.";
        figure.classList.remove("drawn");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncRanges();
    drawCharts();
  });
})();
