/* emoscope report page: draws the figures from the embedded JSON and wires the controls.
   Reads nothing but #emoscope-data; fetches nothing. Text from data is escaped before Plotly sees it. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("emoscope-data").textContent);
  var CONFIG = {
    displaylogo: false,
    responsive: true,
    showLink: false,
    showSendToCloud: false,
    modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"]
  };
  /* Titles sit left, just above the plot, under the band where Plotly's toolbar appears (top right). */
  var BASE_LAYOUT = {
    margin: { l: 60, r: 20, t: 72, b: 50 },
    title: { x: 0, xanchor: "left", xref: "paper", y: 1, yanchor: "bottom", yref: "paper", pad: { b: 12 } },
    font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif", size: 12 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    hoverlabel: { align: "left" },
    xaxis: { gridcolor: "#eceff3", zerolinecolor: "#d0d5dc" },
    yaxis: { gridcolor: "#eceff3", zerolinecolor: "#d0d5dc" }
  };
  var pending = [];

  function merge(base, extra) {
    var out = {}, k;
    for (k in base) { if (Object.prototype.hasOwnProperty.call(base, k)) { out[k] = base[k]; } }
    for (k in extra) {
      if (!Object.prototype.hasOwnProperty.call(extra, k)) { continue; }
      var a = out[k], b = extra[k];
      if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
        out[k] = merge(a, b);
      } else {
        out[k] = b;
      }
    }
    return out;
  }

  function draw(div, fig) {
    var p = Plotly.react(div, fig.data, merge(BASE_LAYOUT, fig.layout || {}), CONFIG);
    pending.push(p);
    return p;
  }

  /* Plotly text understands a few tags and entities: with &, < and > escaped no tag can start,
     and the text is shown as written (Plotly decodes &amp; &lt; &gt; but not &quot;). */
  function esc(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function wrap(text, width) {
    var words = String(text).split(/\s+/), lines = [], line = "";
    words.forEach(function (w) {
      while (w.length > width) {
        if (line) { lines.push(line); line = ""; }
        lines.push(w.slice(0, width));
        w = w.slice(width);
      }
      if (!w) { return; }
      if (line && line.length + 1 + w.length > width) { lines.push(line); line = w; }
      else { line = line ? line + " " + w : w; }
    });
    if (line) { lines.push(line); }
    return lines;
  }

  /* ---- static figures and figure sets (a <select data-switch=ID> swaps DATA.figureSets[ID]) ---- */
  function initFigures() {
    var divs = document.querySelectorAll("[data-figure]");
    Array.prototype.forEach.call(divs, function (div) {
      var id = div.getAttribute("data-figure");
      if (DATA.figures[id]) { draw(div, DATA.figures[id]); }
    });
    var sels = document.querySelectorAll("select[data-switch]");
    Array.prototype.forEach.call(sels, function (sel) {
      var id = sel.getAttribute("data-switch");
      var div = document.getElementById(id);
      var set = DATA.figureSets[id];
      if (!div || !set) { return; }
      draw(div, set[sel.value]);
      sel.addEventListener("change", function () { draw(div, set[sel.value]); });
    });
  }

  /* ---- sortable tables: click (or Enter on) a header ---- */
  function cellValue(row, col) {
    var cell = row.cells[col];
    if (!cell) { return ""; }
    return cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
  }

  function sortTable(table, th) {
    var col = Number(th.getAttribute("data-col"));
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var numeric = rows.every(function (r) {
      var v = cellValue(r, col);
      return v === "" || isFinite(Number(v));
    });
    var current = th.getAttribute("aria-sort");
    var dir;
    if (current === "none") { dir = numeric ? "descending" : "ascending"; }
    else { dir = current === "ascending" ? "descending" : "ascending"; }
    var sign = dir === "ascending" ? 1 : -1;
    rows.sort(function (a, b) {
      var x = cellValue(a, col), y = cellValue(b, col);
      if (x === "" && y === "") { return 0; }
      if (x === "") { return 1; }
      if (y === "") { return -1; }
      if (numeric) { return sign * (Number(x) - Number(y)); }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir);
  }

  function initSortable() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.addEventListener("click", function () { sortTable(table, th); });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, th); }
        });
      });
    });
  }

  /* ---- filtered tables: <select data-filter-table=ID data-filter-attr=ATTR>; "" shows all ---- */
  function applyFilters(tableId) {
    var table = document.getElementById(tableId);
    if (!table) { return; }
    var sels = document.querySelectorAll('select[data-filter-table="' + tableId + '"]');
    var shown = 0, total = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var ok = Array.prototype.every.call(sels, function (sel) {
        return sel.value === "" || row.getAttribute(sel.getAttribute("data-filter-attr")) === sel.value;
      });
      row.style.display = ok ? "" : "none";
      total += 1;
      if (ok) { shown += 1; }
    });
    var counters = document.querySelectorAll('[data-count-for="' + tableId + '"]');
    Array.prototype.forEach.call(counters, function (c) { c.textContent = shown + " of " + total + " rows"; });
  }

  function initFilters() {
    var ids = {};
    Array.prototype.forEach.call(document.querySelectorAll("select[data-filter-table]"), function (sel) {
      var id = sel.getAttribute("data-filter-table");
      ids[id] = true;
      sel.addEventListener("change", function () { applyFilters(id); });
    });
    Object.keys(ids).forEach(applyFilters);
  }

  /* ---- interactive t-SNE ---- */
  function initTsne() {
    var T = DATA.tsne;
    var div = document.getElementById("tsne-plot");
    if (!T || !div) { return; }
    var selPoint = document.getElementById("tsne-point");
    var selEpoch = document.getElementById("tsne-epoch");
    var selColour = document.getElementById("tsne-colour");

    function names(idx) {
      return idx.length ? idx.map(function (i) { return T.labels[i]; }).join(", ") : "(none)";
    }
    var hover = T.first.map(function (_, i) {
      var lines = ["<b>" + esc(T.ids[i] || "probe " + i) + "</b>"];
      if (T.text[i] !== null) { wrap(T.text[i], 72).forEach(function (l) { lines.push(esc(l)); }); }
      lines.push("human: " + esc(names(T.human[i])));
      if (T.pred) {
        lines.push("predicted: " + (T.pred[i] === null ? "(no prediction for this id)" : esc(names(T.pred[i]))));
      }
      return lines.join("<br>");
    });

    function render() {
      var key = selEpoch.value + "|" + selPoint.value;
      var c = T.coords[key];
      var byEmotion = selColour.value === "emotion";
      var title = "t-SNE at " + esc(selPoint.value) + ", epoch " + esc(selEpoch.value);
      if (!c) {
        return draw(div, { data: [], layout: { title: { text: title + ": no coordinates" } } });
      }
      var groupNames = byEmotion ? T.emotionNames : T.groups;
      var colours = byEmotion ? T.emotionColours : T.groupColours;
      var traces = groupNames.map(function (name, g) {
        return {
          type: T.gl ? "scattergl" : "scatter",
          mode: "markers",
          name: name,
          x: [], y: [], hovertext: [], customdata: [],
          hoverinfo: "text",
          marker: { color: colours[g], size: 7, opacity: 0.85, line: { width: 0.5, color: "#ffffff" } }
        };
      });
      for (var k = 0; k < c.i.length; k += 1) {
        var idx = c.i[k];
        var g = byEmotion ? T.first[idx] : T.group[idx];
        if (g < 0) { g = groupNames.length - 1; }
        var t = traces[g];
        t.x.push(c.x[k]);
        t.y.push(c.y[k]);
        t.hovertext.push(hover[idx]);
        t.customdata.push(idx);
      }
      traces = traces.filter(function (t) { return t.x.length > 0; });
      var layout = {
        title: { text: title + " \u2014 coloured by " + (byEmotion ? "first human emotion" : "sentiment group") },
        hovermode: "closest",
        xaxis: { showticklabels: false, zeroline: false, title: { text: "" } },
        yaxis: { showticklabels: false, zeroline: false, title: { text: "" } },
        legend: { itemsizing: "constant", font: { size: 11 } },
        margin: { l: 20, r: 20, t: 72, b: 20 }
      };
      return draw(div, { data: traces, layout: layout });
    }
    [selPoint, selEpoch, selColour].forEach(function (s) { s.addEventListener("change", render); });
    render();
  }

  function run(step, name) {
    try { step(); } catch (err) {
      console.error("emoscope report: " + name + " failed: " + err);
      window.emoscopeError = String(err);
    }
  }

  run(initSortable, "sortable tables");
  run(initFilters, "table filters");
  run(initFigures, "figures");
  run(initTsne, "t-SNE");
  Promise.all(pending).then(function () {
    window.emoscopeReady = true;
    document.body.setAttribute("data-ready", "1");
  }, function (err) {
    console.error("emoscope report: a figure failed: " + err);
    window.emoscopeError = String(err);
    window.emoscopeReady = true;
  });
}());
