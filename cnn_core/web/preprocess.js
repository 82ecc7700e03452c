/* Drawing → model input, the way MNIST was made: a line-by-line port of cnn_core/drawing.py for the web page.

   canvas RGBA → gray (ink = 1) → crop to the ink → fit 20x20 (anti-aliased) → centre of mass at the centre of
   28x28 → rounded to bytes like an MNIST digit → resized to the model's S x S (bilinear) → (x - mean) / std.
   NumPy and torch compute in float32 where drawing.py does, so each float32 step is rounded the same way here
   (Math.fround, Float32Array); NumPy and Python round halves to even, so this file does too.
   Loaded as a plain <script> (window.cnnPreprocess) or by Node (module.exports) for the tests. */
(function (root, factory) {
  if (typeof module === "object" && module.exports) module.exports = factory();
  else root.cnnPreprocess = factory();
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";
  const f32 = Math.fround;
  const BLANK_THRESHOLD = 0.001; // fraction of inked pixels below which a drawing is blank
  const FAINT = f32(0.05); // ink below this is background when cropping (compared in float32, as NumPy does)
  const FIT = 20; // MNIST fitted each digit in a 20x20 box …
  const FIELD = 28; // … inside a 28x28 field
  const BLANK = "The canvas is blank: draw a digit, then try again.";

  /** Python's round(): to the nearest integer, halves to the even one. */
  function roundHalfEven(x) {
    const r = Math.round(x); // halves up
    return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  /** RGBA bytes (H*W*4) → Float32Array (H*W) in [0, 1], ink = 1 (drawing.canvas_to_gray for uint8 RGBA). */
  function canvasToGray(rgba, width, height) {
    const n = width * height;
    const gray = new Float32Array(n);
    let transparent = false;
    for (let i = 0; i < n && !transparent; i++) transparent = rgba[4 * i + 3] < 255;
    if (transparent) { // strokes on a transparent layer: alpha is the ink
      for (let i = 0; i < n; i++) gray[i] = rgba[4 * i + 3] / 255;
      return gray;
    }
    const r = f32(0.299), g = f32(0.587), b = f32(0.114);
    let light = 0;
    for (let i = 0; i < n; i++) {
      gray[i] = f32(f32(rgba[4 * i] * r) + f32(rgba[4 * i + 1] * g)) + f32(rgba[4 * i + 2] * b);
      gray[i] = gray[i] / 255;
      if (gray[i] > 0.5) light++;
    }
    if (light / n > 0.5) for (let i = 0; i < n; i++) gray[i] = 1 - gray[i]; // dark strokes on white
    return gray;
  }

  /** True when less than `threshold` of the pixels are inked (> 0.5). */
  function isBlank(gray, threshold = BLANK_THRESHOLD) {
    let inked = 0;
    for (let i = 0; i < gray.length; i++) if (gray[i] > 0.5) inked++;
    return inked / gray.length < threshold;
  }

  /** Sparse rows of drawing.antialias_matrix(nIn, nOut): [{lo, w: Float64Array}] per output pixel. */
  function antialiasRows(nIn, nOut) {
    const scale = nIn / nOut;
    const support = scale >= 1 ? scale : 1.0, stretch = scale >= 1 ? 1 / scale : 1.0;
    const rows = [];
    for (let i = 0; i < nOut; i++) {
      const center = scale * (i + 0.5);
      const lo = Math.max(Math.trunc(center - support + 0.5), 0), hi = Math.min(Math.trunc(center + support + 0.5), nIn);
      const w = new Float64Array(hi - lo);
      let total = 0;
      for (let j = lo; j < hi; j++) total += (w[j - lo] = Math.max(0.0, 1 - Math.abs((j - center + 0.5) * stretch)));
      for (let k = 0; k < w.length; k++) w[k] /= total;
      rows.push({ lo, w });
    }
    return rows;
  }

  /** (h, w) → scaled so the longer side is `box`, anti-aliased, strongest ink scaled to 1: {data, h, w}. */
  function fit(img, h, w, box) {
    const scale = box / Math.max(h, w);
    const H = Math.max(1, roundHalfEven(h * scale)), W = Math.max(1, roundHalfEven(w * scale));
    const down = antialiasRows(h, H), across = antialiasRows(w, W);
    const tall = new Float64Array(H * w); // rows first, as (A_h @ img) @ A_w.T
    for (let i = 0; i < H; i++) {
      const { lo, w: wt } = down[i];
      for (let k = 0; k < wt.length; k++) {
        const src = (lo + k) * w, weight = wt[k];
        for (let x = 0; x < w; x++) tall[i * w + x] += weight * img[src + x];
      }
    }
    const out = new Float64Array(H * W);
    let most = -Infinity;
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const { lo, w: wt } = across[j];
        let sum = 0;
        for (let k = 0; k < wt.length; k++) sum += tall[i * w + lo + k] * wt[k];
        out[i * W + j] = sum;
        if (sum > most) most = sum;
      }
    }
    const fitted = new Float32Array(H * W);
    for (let i = 0; i < out.length; i++) fitted[i] = out[i] / most;
    return { data: fitted, h: H, w: W };
  }

  /** drawing._offset: the shift snapped to 1/64 pixel, rounded half to even, within [0, most]. */
  function offset(shift, most) {
    return Math.min(Math.max(roundHalfEven(roundHalfEven(shift * 64) / 64), 0), most);
  }

  /** Paste (h, w) into (field, field) with its centre of mass at the centre, never cut off. */
  function centerByMass(img, h, w, field) {
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = img[y * w + x];
        total += v; sy += y * v; sx += x * v;
      }
    }
    const top = offset(field / 2 - sy / total, field - h), left = offset(field / 2 - sx / total, field - w);
    const out = new Float32Array(field * field);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[(top + y) * field + left + x] = img[y * w + x];
    return out;
  }

  /** Bilinear resizing along one axis, align_corners=False (F.interpolate, cnn_core.data.resize_matrix). */
  function linearRows(nIn, nOut) {
    const scale = nIn / nOut, rows = [];
    for (let i = 0; i < nOut; i++) {
      const src = Math.max(scale * (i + 0.5) - 0.5, 0);
      const i0 = Math.floor(src), i1 = i0 < nIn - 1 ? i0 + 1 : i0, t = src - i0;
      rows.push({ i0, i1, w0: 1 - t, w1: t });
    }
    return rows;
  }

  /** (n, n) bytes → (size, size) floats: data.normalize's resize (none when size == n). */
  function resize(digit, n, size) {
    if (size === n) return Float64Array.from(digit);
    const rows = linearRows(n, size), tall = new Float64Array(size * n), out = new Float64Array(size * size);
    for (let i = 0; i < size; i++) {
      const r = rows[i];
      for (let x = 0; x < n; x++) tall[i * n + x] = r.w0 * digit[r.i0 * n + x] + r.w1 * digit[r.i1 * n + x];
    }
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        const c = rows[j];
        out[i * size + j] = f32(c.w0 * tall[i * n + c.i0] + c.w1 * tall[i * n + c.i1]);
      }
    }
    return out;
  }

  /** A canvas's RGBA bytes → every step of drawing.preprocess, as flat Float32Arrays with their sizes.
      Throws an Error whose message is a sentence for the user when the drawing is blank. */
  function preprocess(rgba, width, height, inputSize = 28, mean = 0.1307, std = 0.3081) {
    const gray = canvasToGray(rgba, width, height);
    if (isBlank(gray)) throw new Error(BLANK);
    let top = height, bottom = -1, left = width, right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (gray[y * width + x] > FAINT) {
          if (y < top) top = y;
          bottom = y;
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
    }
    const h = bottom - top + 1, w = right - left + 1;
    const cropped = new Float32Array(h * w);
    for (let y = 0; y < h; y++) cropped.set(gray.subarray((top + y) * width + left, (top + y) * width + left + w), y * w);
    const fitted = fit(cropped, h, w, FIT);
    const centered = centerByMass(fitted.data, fitted.h, fitted.w, FIELD);
    const digit = new Uint8Array(FIELD * FIELD); // stored like an MNIST digit
    for (let i = 0; i < digit.length; i++) digit[i] = roundHalfEven(f32(centered[i] * 255));
    const scaled = resize(digit, FIELD, inputSize);
    const resized = new Float32Array(inputSize * inputSize), tensor = new Float32Array(inputSize * inputSize);
    const m = f32(mean), s = f32(std);
    for (let i = 0; i < scaled.length; i++) {
      resized[i] = scaled[i] / 255;
      tensor[i] = f32(resized[i] - m) / s;
    }
    return {
      gray: { data: gray, h: height, w: width },
      cropped: { data: cropped, h, w },
      fitted,
      centered: { data: centered, h: FIELD, w: FIELD },
      resized: { data: resized, h: inputSize, w: inputSize },
      tensor, // (1, 1, S, S) flattened, what the model takes
    };
  }

  return { preprocess, canvasToGray, isBlank, antialiasRows, roundHalfEven, BLANK, FIT, FIELD };
});
