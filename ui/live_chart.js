// CNN studio's live training curves: each run's records arrive as server-sent events (GET
// /api/runs/<id>/events, ui/stream.py) and are drawn here, in the browser, as SVG. No script reruns while a
// run trains; when every run shown has ended, one trigger ("ended") asks Streamlit to redraw the page once.
// data: {mode: "single" | "overlay", runs: [{id, url, label, color}], epochs, phone: lower panels for a phone's
//        screen, active: [status…], icons: {status: icon},
//        waiting: the queued status, training: the running one} (from cnn_core.runs.RunStatus: none is written here)

let ACTIVE = new Set(), ICONS = {}, WAITING = null, TRAINING = null;

function series(records, events, key) {
  const pts = records.filter((r) => events.includes(r.event) && typeof r[key] === "number")
                     .map((r) => [r.step, r[key]]);
  return pts.sort((a, b) => a[0] - b[0]);
}

function statusLine(run, epochs) {
  const s = run.status || {};
  const state = s.status || "connecting";
  const step = s.step || 0, total = s.total_steps || 0;
  let text = `${ICONS[state] || ""} ${state} · epoch ${s.epoch || 0}/${epochs} · step ${step}/${total || "?"}`;
  if (state === WAITING) text = `${ICONS[WAITING]} waiting in the queue: it starts when the runs before it end`;
  const from = s.resumed_at_step || 0, before = s.resumed_at_elapsed || 0;  // a resumed run's pace: since it resumed
  if (state === TRAINING && step > from && total && s.elapsed) {
    text += ` · about ${Math.round((s.elapsed - before) / (step - from) * (total - step))} s left`;
  }
  const epochsDone = run.records.filter((r) => r.event === "epoch");
  const facts = [];
  if (typeof s.best_val_acc === "number") facts.push(`best validation accuracy ${(s.best_val_acc * 100).toFixed(2)}%`);
  if (epochsDone.length) facts.push(`${Math.round(epochsDone[epochsDone.length - 1].images_per_s).toLocaleString()} images/s`);
  if (s.elapsed) facts.push(`${s.elapsed.toFixed(0)} s`);
  return {text, facts: facts.join(" · "), fraction: total ? Math.min(1, step / total) : 0};
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  ACTIVE = new Set(data.active); ICONS = data.icons; WAITING = data.waiting; TRAINING = data.training;
  const runs = data.runs.map((r) => ({...r, records: [], status: null, ended: false}));
  const root = el("div", {class: "cnn-live", "data-mode": data.mode}, null, null);
  // Replace an earlier draw's root only: Streamlit put the component's stylesheet beside it.
  for (const old of [...parentElement.children].filter((n) => n.classList.contains("cnn-live"))) old.remove();
  parentElement.appendChild(root);
  let pending = false, announced = false;

  function draw() {
    pending = false;
    const width = Math.max(200, root.clientWidth || 640);  // a phone's column: no wider than the screen
    root.replaceChildren();
    root.dataset.records = runs.reduce((n, r) => n + r.records.length, 0);
    root.dataset.status = runs.map((r) => (r.status && r.status.status) || "connecting").join(",");
    const narrow = width < 620, w = narrow ? width : Math.floor((width - 12) / 2), h = data.phone ? 180 : 230;
    if (data.mode === "single") {
      const run = runs[0], line = statusLine(run, data.epochs);
      el("div", {class: "status"}, root, null).textContent = line.text;
      const bar = el("div", {class: "bar"}, root, null);
      el("div", {class: "fill", style: `width: ${(line.fraction * 100).toFixed(1)}%`}, bar, null);
      if (line.facts) el("div", {class: "facts"}, root, null).textContent = line.facts;
      const grid = el("div", {class: "grid2"}, root, null);
      for (const [metric, title] of [["loss", "loss"], ["acc", "accuracy"]]) {
        panel(grid, title, [
          {points: series(run.records, ["step"], `train_${metric}`), color: "#1f77b4"},
          {points: series(run.records, ["epoch"], `train_${metric}`), color: "#1f77b4", dash: "4 3", dots: true},
          {points: series(run.records, ["epoch"], `val_${metric}`), color: "#d62728", dots: true},
        ], w, h);
      }
      legend(root, [["train (running)", "#1f77b4"], ["train (epoch)", "#1f77b4", "4 3"], ["validation (epoch)", "#d62728"]]);
    } else {
      const grid = el("div", {class: "grid2"}, root, null);
      panel(grid, "train loss (running)", runs.map((r) => ({points: series(r.records, ["step"], "train_loss"), color: r.color})), w, h);
      panel(grid, "validation accuracy", runs.map((r) => ({points: series(r.records, ["epoch"], "val_acc"), color: r.color, dots: true})), w, h);
      legend(root, runs.map((r) => [`${r.label} · ${(r.status && r.status.status) || "…"}`, r.color]));
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
