/* labbook ui: charts (uPlot) and the small interactions htmx does not cover. */
(function () {
  "use strict";
  var COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
                 "#000000"];

  // -- the runs table ----------------------------------------------------------------------
  function tableSetup() {
    var form = document.getElementById("filter");
    if (!form) return;
    var selected = new Set();  // ticked runs, kept when the live table is swapped
    form.addEventListener("change", function (event) {
      if (event.target.name === "col") form.requestSubmit();
    });
    document.body.addEventListener("change", function (event) {
      var box = event.target;
      // (not box.form.id: the form's inputs named "id" shadow that property)
      if (box.name === "id" && box.closest && box.closest("#select-form")) {
        if (box.checked) selected.add(box.value); else selected.delete(box.value);
      }
    });
    // htmx:load fires on the new content, in the document (the element that asked for it
    // may be gone with the old table)
    document.body.addEventListener("htmx:load", function () {
      var inner = document.getElementById("table-inner");
      var order = form.querySelector("input[name=order]");
      if (inner && order && inner.dataset.order) order.value = inner.dataset.order;
      document.querySelectorAll("#select-form input[name=id]").forEach(function (box) {
        box.checked = selected.has(box.value);
      });
    });
  }

  // -- compare tables: only the rows that differ -------------------------------------------
  function diffSetup() {
    document.querySelectorAll(".swatch[data-i]").forEach(function (swatch) {
      swatch.style.background = COLOURS[parseInt(swatch.dataset.i, 10) % COLOURS.length];
    });
    document.querySelectorAll("input.only-diff").forEach(function (box) {
      box.addEventListener("change", function () {
        document.getElementById(box.dataset.table).classList.toggle("only", box.checked);
      });
    });
  }

  // -- charts ------------------------------------------------------------------------------
  var charts = null;

  function smooth(values, weight) {
    if (!weight) return values;
    var out = new Array(values.length), last = null, debias = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null) { out[i] = null; continue; }
      last = last === null ? 0 : last;
      last = last * weight + (1 - weight) * v;
      debias = debias * weight + (1 - weight);
      out[i] = last / debias;  // the first points are not pulled towards zero
    }
    return out;
  }

  function xValues(series, mode, start) {
    if (mode === "step") return series.step;
    var times = series.time;
    if (mode === "time") return times;
    var zero = start;
    if (zero === null || zero === undefined) {
      zero = times.find(function (t) { return t !== null; });
    }
    return times.map(function (t) { return t === null ? null : t - zero; });
  }

  // one run's points as [x, y], sorted by x, points without an x left out
  function pairs(series, mode, start, weight, log) {
    var xs = xValues(series, mode, start), ys = smooth(series.value, weight), pts = [];
    for (var i = 0; i < xs.length; i++) {
      if (xs[i] === null || typeof xs[i] !== "number") continue;
      var y = ys[i];
      if (log && y !== null && y <= 0) y = null;
      pts.push([xs[i], y]);
    }
    pts.sort(function (a, b) { return a[0] - b[0]; });
    return [pts.map(function (p) { return p[0]; }), pts.map(function (p) { return p[1]; })];
  }

  function chartData(name) {
    var mode = charts.mode, tables = [], labels = [], colours = [], total = 0;
    charts.runs.forEach(function (id, i) {
      var found = charts.data[id];
      if (!found || !found.metrics[name]) return;
      var series = found.metrics[name];
      total += series.total;
      tables.push(pairs(series, mode, found.start, charts.weight, charts.log));
      labels.push(charts.runs.length > 1 ? (found.name ? id + ": " + found.name : "run " + id) : name);
      colours.push(COLOURS[i % COLOURS.length]);
    });
    if (!tables.length) return null;
    var data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    return {data: data, labels: labels, colours: colours, total: total};
  }

  function draw(figure) {
    var name = figure.dataset.metric, made = chartData(name);
    var holder = figure.querySelector(".plot");
    if (!made) return;
    figure.dataset.points = String(made.data[0].length);
    figure.dataset.total = String(made.total);
    var count = figure.querySelector(".count");
    if (count) count.textContent = "(" + made.total.toLocaleString("en") + " points)";
    var old = charts.plots[name];
    if (old && old.labbookKey === charts.key && old.series.length === made.data.length) {
      old.setData(made.data);
      return;
    }
    if (old) old.destroy();
    var series = [{label: charts.mode === "step" ? "step" : charts.mode === "time" ? "time" : "seconds"}];
    made.labels.forEach(function (label, i) {
      series.push({label: label, stroke: made.colours[i], width: 1.5, spanGaps: true,
                   points: {show: made.data[0].length < 60}});
    });
    var opts = {
      width: Math.max(360, Math.min(620, holder.clientWidth || 520)), height: 260,
      series: series,
      scales: {x: {time: charts.mode === "time"}, y: {distr: charts.log ? 3 : 1}},
      axes: [{}, {size: 60}],
      legend: {show: true},
    };
    holder.innerHTML = "";
    var plot = new uPlot(opts, made.data, holder);
    plot.labbookKey = charts.key;
    charts.plots[name] = plot;
  }

  function redraw() {
    charts.key = charts.mode + "/" + charts.log;
    document.querySelectorAll("figure.chart").forEach(draw);
  }

  // quick: long series as the store's even sample (fast); else min/max per bucket (exact
  // extremes, reads the whole series once; the server keeps it until the series grows)
  function fetchAll(quick) {
    return Promise.all(charts.runs.map(function (id) {
      var url = "/run/" + encodeURIComponent(id) + "/series" + (quick ? "?quick=1" : "");
      return fetch(url, {credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (found) { if (found) charts.data[id] = found; });
    }));
  }

  function sampled() {
    return charts.runs.some(function (id) {
      var found = charts.data[id];
      return found && Object.keys(found.metrics).some(function (name) {
        return found.metrics[name].sampled;
      });
    });
  }

  function running() {
    return charts.runs.some(function (id) {
      return charts.data[id] && charts.data[id].status === "RUNNING";
    });
  }

  function complete() {
    document.getElementById("charts").dataset.complete = sampled() ? "" : "1";
  }

  function live() {
    var badge = document.getElementById("run-status");
    if (badge && charts.runs.length === 1 && charts.data[charts.runs[0]]) {
      var status = charts.data[charts.runs[0]].status;
      badge.textContent = status;
      badge.className = "status status-" + status;
    }
    if (running()) {
      // while running: quick samples of long series; the exact chart once it has ended
      charts.timer = setTimeout(function () {
        fetchAll(true).then(function () {
          if (running() || !sampled()) { redraw(); complete(); live(); return; }
          fetchAll(false).then(function () { redraw(); complete(); live(); });
        });
      }, charts.poll);
    }
  }

  function chartSetup() {
    var box = document.getElementById("charts");
    if (!box || typeof uPlot === "undefined") return;
    charts = {runs: JSON.parse(box.dataset.runs), data: {}, plots: {}, mode: "step",
              log: false, weight: 0, key: "", poll: parseInt(box.dataset.poll || "2000", 10)};
    window.labbookCharts = charts;
    var axis = document.getElementById("x-axis"), log = document.getElementById("log-scale");
    var weight = document.getElementById("smoothing");
    axis.addEventListener("change", function () { charts.mode = axis.value; redraw(); });
    log.addEventListener("change", function () { charts.log = log.checked; redraw(); });
    weight.addEventListener("input", function () {
      charts.weight = parseFloat(weight.value);
      document.getElementById("smoothing-value").textContent = weight.value;
      redraw();
    });
    fetchAll(true).then(function () {
      redraw();
      box.dataset.ready = "1";
      if (!sampled() || running()) { complete(); live(); return; }
      fetchAll(false).then(function () { redraw(); complete(); live(); });
    });
  }

  // an edit refused (read-only, a stale form) or a server error: say so, do not fail silently
  document.addEventListener("htmx:responseError", function (event) {
    var text = event.detail.xhr.responseText || event.detail.xhr.statusText;
    window.alert("labbook ui: " + text.slice(0, 500));
  });

  document.addEventListener("DOMContentLoaded", function () {
    tableSetup();
    diffSetup();
    chartSetup();
  });
})();
