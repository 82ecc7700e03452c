// CNN studio's live training curves: each run's records arrive as server-sent events (GET
// /api/runs/<id>/events, ui/stream.py) and are drawn here, in the browser, as SVG. No script reruns while a
// run trains; when every run shown has ended, one trigger ("ended") asks Streamlit to redraw the page once.
// One run ("single") also shows what was changed by hand (lr marks on the curves, the pause, the last batch
// stepped by hand) and its layers: gradient and weight norms, a histogram of a chosen layer's weights (picked
// here, no rerun) and the vanishing-gradient hint (cnn_core.layer_stats).
// data: {mode: "single" | "overlay", runs: [{id, url, label, color}], epochs, phone: lower panels for a phone's
//        screen, active: [status…], icons: {status: icon},
//        waiting: the queued status, training: the running one (from cnn_core.runs.RunStatus: none is written here),
//        layer_colors: [css…], hint: {one, many} (templates with {layers})}

let ACTIVE = new Set(), ICONS = {}, WAITING = null, TRAINING = null, LAYER_COLORS = [], HINT = {};

function series(records, events, key) {
  const pts = records.filter((r) => events.includes(r.event) && typeof r[key] === "number")
                     .map((r) => [r.step, r[key]]);
  return pts.sort((a, b) => a[0] - b[0]);
}

function statusLine(run, epochs) {
  const s = run.status || {};
  const state = s.status || "connecting";
  const step = s.step || 0, total = s.total_steps || 0;
  const paused = state === TRAINING && s.paused;
  let text = `${paused ? "⏸️ paused" : `${ICONS[state] || ""} ${state}`} · epoch ${s.epoch || 0}/${epochs} · step ${step}/${total || "?"}`;
  if (state === WAITING) text = `${ICONS[WAITING]} waiting in the queue: it starts when the runs before it end`;
  const from = s.resumed_at_step || 0, before = s.resumed_at_elapsed || 0;  // a resumed run's pace: since it resumed
  if (state === TRAINING && !paused && step > from && total && s.elapsed) {
    text += ` · about ${Math.round((s.elapsed - before) / (step - from) * (total - step))} s left`;
  }
  const epochsDone = run.records.filter((r) => r.event === "epoch");
  const facts = [];
  if (typeof s.best_val_acc === "number") facts.push(`best validation accuracy ${(s.best_val_acc * 100).toFixed(2)}%`);
  if (epochsDone.length) facts.push(`${Math.round(epochsDone[epochsDone.length - 1].images_per_s).toLocaleString()} images/s`);
  if (s.elapsed) facts.push(`${s.elapsed.toFixed(0)} s`);
  return {text, facts: facts.join(" · "), fraction: total ? Math.min(1, step / total) : 0};
}

function lastOf(records, event) {
  for (let i = records.length - 1; i >= 0; i--) if (records[i].event === event) return records[i];
  return null;
}

// Where lr or momentum was set by hand: a vertical mark on the curves.
function marks(records) {
  return records.filter((r) => r.event === "control" && r.action === "set").map((r) => ({
    x: r.step, label: `lr ${fmt(r.lr)}` + (typeof r.momentum === "number" ? ` · m ${fmt(r.momentum)}` : "")}));
}

// One series per layer of a per-layer statistic of the step records (grad_norms, weight_norms).
function layerSeries(records, key) {
  const steps = records.filter((r) => r.event === "step" && r[key]);
  const names = steps.length ? Object.keys(steps[steps.length - 1][key]) : [];
  return names.map((name, i) => ({name, color: LAYER_COLORS[i % LAYER_COLORS.length],
    points: steps.filter((r) => typeof r[key][name] === "number").map((r) => [r.step, r[key][name]])}));
}

function hintText(layers) {
  const names = layers.length === 1 ? layers[0] : layers.slice(0, -1).join(", ") + " and " + layers[layers.length - 1];
  return (layers.length === 1 ? HINT.one : HINT.many).replace("{layers}", names);
}

function percent(v) {
  return typeof v === "number" ? `${+(v * 100).toPrecision(2)}%` : "—";
}

// The last batch stepped by hand: its numbers, then its images as the model saw them, label → prediction.
function handStep(parent, r) {
  const box = el("div", {class: "hand-step"}, parent, null);
  el("div", {class: "hand-title"}, box, null).textContent =
    `Step ${r.step}, one batch by hand: loss ${typeof r.loss === "number" ? r.loss.toFixed(3) : "—"} · accuracy ` +
    `${percent(r.acc)} of its ${r.batch_size} images · the update moved the weights by ${percent(r.update_ratio)} ` +
    `(‖Δw‖ / ‖w‖)`;
  const grid = el("div", {class: "hand-images"}, box, null);
  const side = r.side, bytes = Uint8Array.from(atob(r.images), (c) => c.charCodeAt(0));
  r.labels.forEach((label, i) => {
    const figure = el("figure", {}, grid, null);
    const canvas = el("canvas", {width: side, height: side}, figure, null);
    const ctx = canvas.getContext("2d"), image = ctx.createImageData(side, side);
    for (let k = 0; k < side * side; k++) {
      const v = bytes[i * side * side + k];
      image.data.set([v, v, v, 255], 4 * k);
    }
    ctx.putImageData(image, 0, 0);
    const right = r.predictions[i] === label;
    el("figcaption", {class: right ? "" : "wrong"}, figure, null).textContent = `${label} → ${r.predictions[i]}`;
  });
  el("div", {class: "facts"}, box, null).textContent = `The first ${r.labels.length} images of the batch: label → ` +
    "what the model predicted before the step (red: wrong).";
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  ACTIVE = new Set(data.active); ICONS = data.icons; WAITING = data.waiting; TRAINING = data.training;
  LAYER_COLORS = data.layer_colors || ["#1f77b4"]; HINT = data.hint || {};
  const runs = data.runs.map((r) => ({...r, records: [], status: null, ended: false}));
  const root = el("div", {class: "cnn-live", "data-mode": data.mode}, null, null);
  parentElement.querySelectorAll(":scope > .cnn-live").forEach((old) => old.remove());  // not the component's <style>
  parentElement.appendChild(root);
  const main = el("div", {}, root, null);  // redrawn whole at each update
  // The histogram's layer picker stays put (a redraw must not close it while someone picks): only its options change.
  const pickRow = el("label", {class: "layer-pick", hidden: ""}, root, null);
  pickRow.appendChild(document.createTextNode("Weights of layer "));
  const pick = el("select", {}, pickRow, null);
  const histBox = el("div", {}, root, null);
  pick.addEventListener("change", () => schedule());
  let pending = false, announced = false;

  function drawLayers(run, w, h) {
    const grads = layerSeries(run.records, "grad_norms"), weights = layerSeries(run.records, "weight_norms");
    const last = lastOf(run.records, "step");
    histBox.replaceChildren();
    pickRow.hidden = !grads.length;
    if (!grads.length) return;  // a run without layer statistics (recorded before they existed)
    if (last && last.vanishing && last.vanishing.length) {
      el("div", {class: "hint"}, main, null).textContent = "⚠️ " + hintText(last.vanishing);
    }
    const grid = el("div", {class: "grid2"}, main, null);
    panel(grid, "gradient norm per layer (log)", grads, w, h, "step", fmt, {log: true, marks: marks(run.records)});
    panel(grid, "weight norm per layer (log)", weights, w, h, "step", fmt, {log: true, marks: marks(run.records)});
    legend(main, grads.map((s) => [s.name, s.color]));
    const names = grads.map((s) => s.name);
    if ([...pick.options].map((o) => o.value).join() !== names.join()) {
      const chosen = pick.value;
      pick.replaceChildren(...names.map((name) => { const o = el("option", {value: name}, null, null); o.textContent = name; return o; }));
      pick.value = names.includes(chosen) ? chosen : names[0];
    }
    const hist = last && last.weight_hist && last.weight_hist[pick.value];
    if (hist) {
      const color = grads[names.indexOf(pick.value)].color;
      histogram(histBox, `${pick.value}: its weights at step ${last.step}`, hist.lo, hist.hi, hist.counts, w, h, color);
      histBox.firstChild.dataset.layer = pick.value;
    }
  }

  function draw() {
    pending = false;
    const width = Math.max(200, root.clientWidth || 640);  // a phone's column: no wider than the screen
    main.replaceChildren();
    root.dataset.records = runs.reduce((n, r) => n + r.records.length, 0);
    root.dataset.status = runs.map((r) => (r.status && r.status.status) || "connecting").join(",");
    const narrow = width < 620, w = narrow ? width : Math.floor((width - 12) / 2), h = data.phone ? 180 : 230;
    if (data.mode === "single") {
      const run = runs[0], line = statusLine(run, data.epochs), changes = marks(run.records);
      root.dataset.paused = !!(run.status && run.status.paused);
      root.dataset.marks = changes.length;
      el("div", {class: "status"}, main, null).textContent = line.text;
      const bar = el("div", {class: "bar"}, main, null);
      el("div", {class: "fill", style: `width: ${(line.fraction * 100).toFixed(1)}%`}, bar, null);
      if (line.facts) el("div", {class: "facts"}, main, null).textContent = line.facts;
      const grid = el("div", {class: "grid2"}, main, null);
      for (const [metric, title] of [["loss", "loss"], ["acc", "accuracy"]]) {
        panel(grid, title, [
          {points: series(run.records, ["step"], `train_${metric}`), color: "#1f77b4"},
          {points: series(run.records, ["epoch"], `train_${metric}`), color: "#1f77b4", dash: "4 3", dots: true},
          {points: series(run.records, ["epoch"], `val_${metric}`), color: "#d62728", dots: true},
        ], w, h, "step", fmt, {marks: changes});
      }
      legend(main, [["train (running)", "#1f77b4"], ["train (epoch)", "#1f77b4", "4 3"], ["validation (epoch)", "#d62728"],
                    ...(changes.length ? [["lr / momentum set by hand", "#7f7f7f", "3 3"]] : [])]);
      const hand = lastOf(run.records, "hand_step"), resumed = lastOf(run.records, "control");
      root.dataset.handSteps = run.records.filter((r) => r.event === "hand_step").length;
      if (hand && !(resumed && resumed.action === "resume" && resumed.step >= hand.step)) handStep(main, hand);
      drawLayers(run, w, h);
    } else {
      const grid = el("div", {class: "grid2"}, main, null);
      panel(grid, "train loss (running)", runs.map((r) => ({points: series(r.records, ["step"], "train_loss"), color: r.color})), w, h);
      panel(grid, "validation accuracy", runs.map((r) => ({points: series(r.records, ["epoch"], "val_acc"), color: r.color, dots: true})), w, h);
      legend(main, runs.map((r) => [`${r.label} · ${(r.status && r.status.status) || "…"}`, r.color]));
    }
    if (!announced && runs.every((r) => r.ended)) {
      announced = true;  // every run has ended: one page redraw shows the final results
      setTriggerValue("ended", runs.map((r) => r.status && r.status.status).join(","));
    }
  }

  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }

  const sources = runs.map((run) => {
    const source = new EventSource(run.url);
    source.addEventListener("status", (e) => {
      run.status = JSON.parse(e.data);
      if (!ACTIVE.has(run.status.status)) run.ended = true;
      schedule();
    });
    source.addEventListener("records", (e) => { run.records.push(...JSON.parse(e.data)); schedule(); });
    source.addEventListener("gone", () => { run.status = {status: "deleted"}; run.ended = true; source.close(); schedule(); });
    source.onerror = () => {
      if (run.ended) source.close();  // the server ended the stream after the final status: do not reconnect
      else schedule();  // EventSource reconnects by itself, with Last-Event-ID
    };
    return source;
  });
  const resize = new ResizeObserver(schedule);
  resize.observe(root);
  schedule();
  return () => { sources.forEach((s) => s.close()); resize.disconnect(); };
}
