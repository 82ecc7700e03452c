// CNN studio's class board, drawn in the browser from the board's event stream (GET /api/class/board/events,
// ui/board_view.py): every student's validation accuracy by epoch on one chart, the leaderboard (a row opens the
// run), the drawing wall. No script reruns while the class works; one trigger ("rerun") asks Streamlit to redraw
// the page when the class ended, or, on the projector, when the teacher projected another run.
// data: {url, big: projector type, projected: the run the page shows (projector) or undefined, colors: [css…]}

function pct(v) {
  return typeof v === "number" ? (v * 100).toFixed(1) + "%" : "—";
}

function text(tag, content, parent, attrs = {}) {
  const node = el(tag, attrs, parent, null);
  node.textContent = content;
  return node;
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const root = el("div", {class: "cnn-board" + (data.big ? " big" : "")}, null, null);
  parentElement.querySelectorAll(":scope > .cnn-board").forEach((old) => old.remove());  // not the component's <style>
  parentElement.appendChild(root);
  let board = null, step = "all", pending = false, asked = false;

  function ask(why) {
    if (!asked) { asked = true; setTriggerValue("rerun", why); }
  }

  function draw() {
    pending = false;
    root.replaceChildren();
    if (!board) { text("div", "Connecting to the class board …", root, {class: "note"}); return; }
    root.dataset.version = board.version;
    root.dataset.runs = board.runs.length;
    const lesson = board.lesson ? ` · lesson: ${board.lesson}` : "";
    text("div", `${board.students} student${board.students === 1 ? "" : "s"} joined${lesson} · live`, root, {class: "note"});
    if (board.steps.length > 1) {
      const bar = el("div", {class: "steps", role: "group", "aria-label": "Step"}, root, null);
      for (const [value, label] of [["all", "all steps"], ...board.steps.map((t, i) => [String(i), `${i + 1}. ${t}`])]) {
        const b = text("button", label, bar, {type: "button", class: value === step ? "on" : ""});
        b.addEventListener("click", () => { step = value; schedule(); });
      }
    }
    const runs = step === "all" ? board.runs : board.runs.filter((r) => String(r.step) === step);
    if (!runs.length) {
      text("div", step === "all" ? "No runs in this class yet: they appear here as soon as students press Train."
                                 : "No runs at this step yet.", root, {class: "info"});
    } else {
      const active = runs.filter((r) => r.active);
      if (active.length) {
        const line = el("div", {class: "active"}, root, null);
        text("b", "Training and waiting: ", line);
        line.appendChild(document.createTextNode(active.map((r) => `${r.icon} ${r.name} · ${r.model}`).join(", ")));
      }
      const width = Math.max(200, root.clientWidth || 640), height = data.big ? 520 : 340;
      const lines = runs.map((r, i) => ({
        points: r.epochs.map((e, k) => [e, r.val_acc[k]]).filter((p) => typeof p[1] === "number"),
        color: r.teacher ? "#111111" : data.colors[i % data.colors.length], width: r.teacher ? 4 : 1.8, dots: true,
        label: `${r.name} · ${r.model}`}));
      panel(root, "validation accuracy", lines, width, height, "epoch", pct, {left: data.big ? 84 : 44});
      legend(root, runs.map((r, i) => [`${r.name} · ${r.model}`, lines[i].color]));
      text("div", "Leaderboard — a row opens the run", root, {class: "heading"});
      const scroll = el("div", {class: "scroll"}, root, null);  // on a phone the table scrolls sideways, not the page
      const table = el("table", {class: "leaderboard"}, scroll, null);
      const head = el("tr", {}, el("thead", {}, table, null), null);
      for (const h of ["#", "step", "who", "model", "test acc", "best val acc", "what they changed", "status"]) text("th", h, head);
      const body = el("tbody", {}, table, null);
      runs.forEach((r, i) => {
        const row = el("tr", {class: r.teacher ? "teacher" : ""}, body, null);
        const who = r.name + (r.teacher && r.name !== "teacher" ? " (teacher)" : "");
        for (const cell of [i + 1, r.step + 1, null, r.model, pct(r.test_acc), pct(r.best_val_acc), r.changes, `${r.icon} ${r.state}`]) {
          if (cell === null) {
            text("a", who, el("td", {}, row, null), {href: `train?run=${encodeURIComponent(r.run_id)}`, target: "_self"});
          } else {
            text("td", String(cell), row);
          }
        }
        row.addEventListener("click", (e) => {
          if (e.target.tagName !== "A") window.location.href = `train?run=${encodeURIComponent(r.run_id)}`;
        });
      });
    }
    if (board.wall.length) {
      text("div", "Drawing wall — what each student drew and what their model read", root, {class: "heading"});
      const wall = el("div", {class: "wall"}, root, null);
      for (const d of board.wall) {
        const fig = el("figure", {}, wall, null);
        el("img", {src: d.image, alt: `${d.name}'s drawing`, width: data.big ? 140 : 84, height: data.big ? 140 : 84}, fig, null);
        text("figcaption", `${d.name}: ${d.prediction} (${Math.round(d.confidence * 100)}%)`, fig);
      }
    }
  }

  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }

  const source = new EventSource(data.url);
  source.addEventListener("board", (e) => {
    board = JSON.parse(e.data);
    if (data.projected !== undefined && (board.projected || null) !== (data.projected || null)) ask("projected");
    schedule();
  });
  source.addEventListener("ended", () => { source.close(); ask("ended"); });
  const resize = new ResizeObserver(schedule);
  resize.observe(root);
  schedule();
  return () => { source.close(); resize.disconnect(); };
}
