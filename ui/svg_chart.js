// Small SVG charts shared by CNN studio's components (live_chart.js, class_board.js): prepended to each one's
// module by its Python side, so both draw the same axes, ticks and legends.

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, parent = null, ns = SVG) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function ticks(lo, hi, n = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-12; t += step) out.push(+t.toPrecision(6));
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 1 ? +v.toFixed(2) + "" : +v.toPrecision(2) + "";
}

// One panel: a title, axes with a few ticks, and each series as a polyline (or dots: epoch records).
// opts.log: a log10 y axis (values ≤ 0 left out); opts.marks: [{x, label}] vertical lines at those x;
// opts.left: the left margin, for the y tick labels (44 px; more for big type).
function panel(root, title, lines, width, height, xLabel = "step", yFormat = fmt, opts = {}) {
  const m = {l: opts.left || 44, r: 10, t: 22, b: 28};
  const svg = el("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "panel"}, root);
  el("text", {x: m.l, y: 14, class: "title"}, svg).textContent = title;
  if (opts.log) {
    lines = lines.map((s) => ({...s, points: s.points.filter((p) => p[1] > 0).map((p) => [p[0], Math.log10(p[1])])}));
    yFormat = (t) => fmt(10 ** t);
  }
  const pts = lines.flatMap((s) => s.points);
  if (!pts.length) {
    el("text", {x: width / 2, y: height / 2, class: "empty", "text-anchor": "middle"}, svg).textContent = "waiting for the first points …";
    return;
  }
  const xs = [...pts.map((p) => p[0]), ...(opts.marks || []).map((mark) => mark.x)];  // a mark past the last point too
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const X = (x) => m.l + (x - x0) / (x1 - x0) * (width - m.l - m.r);
  const Y = (y) => height - m.b - (y - y0) / (y1 - y0) * (height - m.t - m.b);
  for (const t of ticks(y0, y1)) {
    el("line", {x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), class: "grid"}, svg);
    el("text", {x: m.l - 4, y: Y(t) + 4, class: "tick", "text-anchor": "end"}, svg).textContent = yFormat(t);
  }
  for (const t of ticks(x0, x1, 5)) {
    el("text", {x: X(t), y: height - m.b + 14, class: "tick", "text-anchor": "middle"}, svg).textContent = fmt(t);
  }
  el("text", {x: width - m.r, y: height - 2, class: "tick", "text-anchor": "end"}, svg).textContent = xLabel;
  for (const mark of opts.marks || []) {
    if (mark.x < x0 || mark.x > x1) continue;
    el("line", {x1: X(mark.x), x2: X(mark.x), y1: m.t, y2: height - m.b, class: "mark"}, svg);
    const left = X(mark.x) > width - 90;  // near the right edge: the label on the line's left
    const label = el("text", {x: X(mark.x) + (left ? -3 : 3), y: m.t + 10, class: "mark-label",
                              "text-anchor": left ? "end" : "start"}, svg);
    label.textContent = mark.label;
  }
  for (const s of lines) {
    if (!s.points.length) continue;
    const d = s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    const line = el("polyline", {points: d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.6,
                                 "stroke-dasharray": s.dash || "", opacity: s.opacity || 1}, svg);
    if (s.label) el("title", {}, line).textContent = s.label;
    if (s.dots || s.points.length === 1) {
      for (const p of s.points) el("circle", {cx: X(p[0]), cy: Y(p[1]), r: 3.2, fill: s.color}, svg);
    }
  }
}

function legend(root, items) {
  const box = el("div", {class: "legend"}, root, null);
  for (const [label, color, dash] of items) {
    const item = el("span", {}, box, null);
    const swatch = el("svg", {width: 22, height: 10}, item);
    el("line", {x1: 1, x2: 21, y1: 5, y2: 5, stroke: color, "stroke-width": 2.5, "stroke-dasharray": dash || ""}, swatch);
    item.appendChild(document.createTextNode(" " + label));
  }
}

// A histogram: `counts` in equal bins from lo to hi, as bars.
function histogram(root, title, lo, hi, counts, width, height, color = "#1f77b4") {
  const m = {l: 44, r: 10, t: 22, b: 28};
  const svg = el("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "panel"}, root);
  el("text", {x: m.l, y: 14, class: "title"}, svg).textContent = title;
  const top = Math.max(1, ...counts), n = counts.length, w = (width - m.l - m.r) / n;
  const Y = (c) => height - m.b - c / top * (height - m.t - m.b);
  for (const t of ticks(0, top)) {
    el("line", {x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), class: "grid"}, svg);
    el("text", {x: m.l - 4, y: Y(t) + 4, class: "tick", "text-anchor": "end"}, svg).textContent = fmt(t);
  }
  counts.forEach((c, i) => el("rect", {x: m.l + i * w + 0.5, y: Y(c), width: Math.max(1, w - 1), height: Y(0) - Y(c),
                                       fill: color}, svg));
  for (const [x, anchor] of [[m.l, "start"], [m.l + n * w / 2, "middle"], [width - m.r, "end"]]) {
    const raw = lo + (x - m.l) / (n * w) * (hi - lo), v = Math.abs(raw) < 1e-12 ? 0 : raw;
    el("text", {x, y: height - m.b + 14, class: "tick", "text-anchor": anchor}, svg).textContent = fmt(v);
  }
  el("text", {x: width - m.r, y: height - 2, class: "tick", "text-anchor": "end"}, svg).textContent = "weight";
}
