/* The stand-alone page's script (cnn_core/webpage.py inlines it): load onnxruntime-web and the model from the
   page itself, then read the canvas as the pen moves: preprocess.js → the model → probabilities and maps.

   window.cnnStudio (for tests and benchmarks): ready (a promise), analyse(rgba, w, h) → what one update
   computes, update() → analyses the canvas and shows it, state {version, upVersion, shownVersion}. */
const $ = (id) => document.getElementById(id);
const meta = JSON.parse($("meta").textContent);
const { preprocess, BLANK } = window.cnnPreprocess;
const pad = $("pad");
const pen = pad.getContext("2d", { willReadFrequently: true });
const HINT = "Draw a digit in the black square: the model reads it as you draw.";
const state = { version: 0, upVersion: 0, shownVersion: 0 }; // canvas changes, the last pen-up's, the one shown
let session = null;

function base64Bytes(id) {
  const text = atob($(id).textContent.trim());
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

async function gunzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadModel() {
  const url = URL.createObjectURL(new Blob([base64Bytes("ort-js")], { type: "text/javascript" }));
  const ort = await import(url); // a blob: module works from file:// too, where fetching files does not
  URL.revokeObjectURL(url);
  ort.env.wasm.wasmBinary = await gunzip(base64Bytes("ort-wasm-gz")); // so it fetches no .wasm file
  ort.env.wasm.numThreads = 1; // one 28x28 image: threads would only wait (and need cross-origin isolation)
  ort.env.wasm.proxy = false;
  const created = await ort.InferenceSession.create(base64Bytes("model-onnx"), { executionProviders: ["wasm"] });
  return { ort, session: created };
}

function softmax(logits) {
  const top = Math.max(...logits), exps = Array.from(logits, (x) => Math.exp(x - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** RGBA bytes (w, h) → {steps, probs, prediction, maps: {data, dims} | null, ms}; null when blank. */
async function analyse(rgba, w, h) {
  const start = performance.now();
  let steps;
  try {
    steps = preprocess(rgba, w, h, meta.input_size, meta.mean, meta.std);
  } catch (e) {
    if (e.message === BLANK) return null;
    throw e;
  }
  const size = meta.input_size;
  const input = new session.ort.Tensor("float32", steps.tensor, [1, 1, size, size]);
  const out = await session.session.run({ input });
  const probs = softmax(out.logits.data);
  const prediction = probs.indexOf(Math.max(...probs));
  const maps = out.maps ? { data: out.maps.data, dims: out.maps.dims.slice(1) } : null;
  return { steps, probs, prediction, maps, ms: performance.now() - start };
}

function drawGray(canvas, data, h, w, scale) {
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * scale}px`; canvas.style.height = `${h * scale}px`;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(255 * Math.min(1, Math.max(0, data[i])));
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}

/* Feature maps on one shared scale, as the app's Inspect page: gray when all ≥ 0 (after ReLU or pooling),
   blue-white-red centred at 0 when signed. */
function drawMaps(maps) {
  const [c, h, w] = maps.dims, data = maps.data;
  let lo = Infinity, hi = -Infinity;
  for (const v of data) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const signed = lo < 0, limit = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const holder = $("maps");
  while (holder.children.length > c) holder.lastChild.remove();
  while (holder.children.length < c) {
    const fig = document.createElement("figure"), canvas = document.createElement("canvas");
    canvas.className = "pixels";
    fig.append(canvas, Object.assign(document.createElement("figcaption"), { textContent: `${holder.children.length}` }));
    holder.append(fig);
  }
  const scale = Math.max(1, Math.floor(84 / Math.max(h, w)));
  for (let k = 0; k < c; k++) {
    const canvas = holder.children[k].firstChild;
    canvas.width = w; canvas.height = h;
    canvas.style.width = `${w * scale}px`; canvas.style.height = `${h * scale}px`;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const v = data[k * h * w + i] / limit;
      let rgb;
      if (!signed) { const g = Math.round(255 * v); rgb = [g, g, g]; }
      else if (v >= 0) { const t = Math.round(255 * (1 - v)); rgb = [255, t, t]; }
      else { const t = Math.round(255 * (1 + v)); rgb = [t, t, 255]; }
      img.data.set([...rgb, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  }
}

function buildBars() {
  const bars = $("bars");
  meta.classes.forEach((name) => {
    const label = Object.assign(document.createElement("span"), { textContent: name });
    const track = Object.assign(document.createElement("span"), { className: "track" });
    track.append(Object.assign(document.createElement("span"), { className: "fill" }));
    bars.append(label, track, Object.assign(document.createElement("span"), { className: "pct" }));
  });
}

function show(result, version) {
  state.shownVersion = version;
  const bars = $("bars").children;
  if (result === null) {
    $("prediction").textContent = "";
    $("status").textContent = HINT;
    for (let k = 0; k < meta.classes.length; k++) {
      bars[3 * k + 1].firstChild.style.width = "0";
      bars[3 * k + 1].classList.remove("top");
      bars[3 * k + 2].textContent = "";
    }
    return;
  }
  $("prediction").textContent = meta.classes[result.prediction];
  $("status").textContent = `${Math.round(100 * result.probs[result.prediction])}% sure · computed in ${result.ms.toFixed(1)} ms`;
  result.probs.forEach((p, k) => {
    bars[3 * k + 1].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
    bars[3 * k + 1].classList.toggle("top", k === result.prediction);
    bars[3 * k + 2].textContent = `${Math.round(100 * p)}%`;
  });
  const view = result.steps.resized;
  drawGray($("input"), view.data, view.h, view.w, Math.floor(168 / view.w));
  if (result.maps) drawMaps(result.maps);
}

async function update() {
  const version = state.version;
  const result = await analyse(pen.getImageData(0, 0, pad.width, pad.height).data, pad.width, pad.height);
  show(result, version);
  return result;
}

/* One update at a time; a change while one runs asks for one more, of the latest canvas. */
let running = false, again = false;
async function refresh() {
  if (!session) return;
  if (running) { again = true; return; }
  running = true;
  try {
    do { again = false; await update(); } while (again);
  } catch (e) {
    $("status").textContent = `The model could not read the drawing: ${e.message}`;
    $("status").classList.add("error");
  } finally {
    running = false;
  }
}

function clearPad() {
  pen.fillStyle = "#000";
  pen.fillRect(0, 0, pad.width, pad.height);
  state.version++;
  refresh();
}

let last = null, frame = 0;
function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}
function ink(from, to) {
  pen.strokeStyle = "#fff"; pen.lineCap = "round"; pen.lineJoin = "round"; pen.lineWidth = Number($("width").value);
  pen.beginPath(); pen.moveTo(...from); pen.lineTo(...to); pen.stroke();
  state.version++;
}
pad.addEventListener("pointerdown", (e) => {
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  ink(last, last);
});
pad.addEventListener("pointermove", (e) => {
  if (last === null) return;
  const next = point(e);
  ink(last, next);
  last = next;
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; refresh(); }); // as the pen moves, once a frame
});
const penUp = () => {
  if (last === null) return;
  last = null;
  state.upVersion = ++state.version; // the drawing as the pen left it: read it now
  refresh();
};
pad.addEventListener("pointerup", penUp);
pad.addEventListener("pointercancel", penUp);
$("clear").addEventListener("click", clearPad);

const about = [`${meta.model}, trained on ${meta.dataset}`];
if (meta.test_acc != null) about.push(`test accuracy ${(100 * meta.test_acc).toFixed(2)}%`);
about.push(`exported from CNN studio (${meta.source}) on ${meta.exported_at}`);
$("about").textContent = about.join(" · ");
$("input-caption").textContent = `${meta.input_size}x${meta.input_size}, before normalization`;
$("maps-title").textContent = meta.layer
  ? `Feature maps of layer ${meta.layer} (${meta.maps_shape.join(" × ")})`
  : `${meta.model} has no conv layer, so it makes no feature maps.`;
buildBars();
pen.fillStyle = "#000";
pen.fillRect(0, 0, pad.width, pad.height);

const ready = loadModel().then((loaded) => {
  session = loaded;
  $("status").textContent = HINT;
  document.body.dataset.ready = "1";
  return refresh();
}).catch((e) => {
  $("status").textContent = `This browser could not start the model (${e.message}). A recent Chrome, Edge, Firefox or Safari can.`;
  $("status").classList.add("error");
  throw e;
});

window.cnnStudio = { ready, analyse, update, state, meta };
