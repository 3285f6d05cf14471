// overair console: live slider values, copy buttons, typed confirmations and the charts drawn from the JSON
// the page embeds. Pages work without this script: the server checks everything it helps with.
"use strict";

(function () {
  const fallback = ["#0b5cad", "#6941c6", "#0e7490", "#374151"];

  function syncRanges() {
    document.querySelectorAll("input[type=range]").forEach(function (range) {
      const output = document.querySelector("output[for='" + range.id + "']");
      const floor = Number(range.dataset.floor || range.min || 0);
      const box = range.closest(".range-box");
      const mark = box && box.querySelector(".now-mark");
      if (mark) {
        // the current share, under the slider's 0–100 scale
        // the thumb's centre runs from half a thumb (8px) in at 0% to half a thumb short of the end at 100%
        const at = Number(mark.dataset.at);
        mark.style.left = "calc(" + at + "% + " + ((0.5 - at / 100) * 16).toFixed(1) + "px)";
        mark.classList.add("placed");
      }
      const show = function () {
        if (Number(range.value) < floor) range.value = String(floor); // a rollout only grows
        if (output) output.textContent = range.value + "%";
      };
      range.addEventListener("input", show);
      show();
    });
  }

  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      const source = document.getElementById(button.dataset.copy);
      const said = button.parentElement.querySelector(".copied");
      if (!source) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        const text = source.textContent.trim();
        const done = function () { if (said) said.textContent = "Copied."; };
        const byHand = function () {
          const details = source.closest("details");
          if (details) details.open = true;
          const selection = window.getSelection();
          const range = document.createRange();
          range.selectNodeContents(source);
          selection.removeAllRanges();
          selection.addRange(range);
          if (said) said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, byHand);
        } else {
          byHand();
        }
      });
    });
  }

  function showHide() {
    // "Show key" becomes "Hide key" while the key is shown
    document.querySelectorAll(".secret details").forEach(function (details) {
      const summary = details.querySelector("summary");
      if (!summary) return;
      const shown = summary.textContent.replace(/^Show /, "Hide ");
      const hidden = summary.textContent;
      details.addEventListener("toggle", function () { summary.textContent = details.open ? shown : hidden; });
    });
  }

  function typedConfirmations() {
    document.querySelectorAll("input[data-must-be]").forEach(function (input) {
      const button = input.form && input.form.querySelector("button[type=submit]");
      if (!button) return;
      const check = function () { button.disabled = input.value.trim() !== input.dataset.mustBe; };
      input.addEventListener("input", check);
      check();
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
      const stepped = figure.dataset.kind === "step"; // a share that holds until the next step
      const line = figure.dataset.kind === "line" || stepped;
      // points with times (chart.t, ms) go on a time axis, spaced as they happened; no date adapter needed
      const timed = Array.isArray(chart.t) && chart.t.length === chart.x.length;
      const span = timed ? chart.t[chart.t.length - 1] - chart.t[0] : 0;
      const utc = function (ms) { // MM-DD HH:MM, or HH:MM:SS when everything happened within ten minutes
        const iso = new Date(ms).toISOString();
        return span < 600000 ? iso.slice(11, 19) : iso.slice(5, 16).replace("T", " ");
      };
      new window.Chart(canvas, {
        type: line ? "line" : "bar",
        data: {
          labels: timed ? undefined : chart.x,
          datasets: chart.series.map(function (s, i) {
            // each kind of number has one colour everywhere (views.SERIES_COLOURS)
            const colour = s.color || fallback[i % fallback.length];
            const values = timed ? s.values.map(function (v, j) { return { x: chart.t[j], y: v }; }) : s.values;
            return {
              label: s.name, data: values, borderColor: colour, backgroundColor: colour,
              borderWidth: line ? 2 : 0, pointRadius: line ? (chart.x.length < 3 ? 4 : 2) : 0,
              maxBarThickness: 48, stepped: stepped ? "before" : false,
            };
          }),
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          // offset: a single point (the last hour) sits in the middle, not on the axis
          scales: {
            x: timed
              ? { type: "linear", ticks: { callback: utc, maxTicksLimit: 8 } }
              : { offset: true },
            y: stepped ? { min: 0, max: 100, ticks: { precision: 0 } } : { beginAtZero: true, ticks: { precision: 0 } },
          },
          plugins: {
            legend: { position: "bottom" },
            tooltip: timed ? { callbacks: { title: function (items) { return utc(items[0].parsed.x) + " UTC"; } } } : {},
          },
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
    copyButtons();
    showHide();
    typedConfirmations();
    drawCharts();
  });
})();
