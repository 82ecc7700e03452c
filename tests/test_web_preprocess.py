"""cnn_core/web/preprocess.js against cnn_core/drawing.py, step by step, on the same drawings (run by Node).

The port rounds like NumPy and torch, so each step matches to float32 precision; the one place it may not
is a byte of the 28x28 digit whose value lies within a rounding error of a half (then one grey level).
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnn_core.drawing import preprocess
from tests.web_drawings import drawings, edge_cases

ROOT = Path(__file__).resolve().parents[1]
PREPROCESS_JS = ROOT / "cnn_core" / "web" / "preprocess.js"
NODE = shutil.which("node")
GREY_LEVEL = 1 / 255  # one step of the rounded 28x28 digit, in the model's [0, 1] view
RUNNER = """
const { preprocess } = require(process.argv[1]);
const jobs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const f32 = (a) => Buffer.from(new Float32Array(a).buffer).toString('base64');
const out = jobs.map(({ rgba, h, w, size, mean, std }) => {
  try {
    const s = preprocess(Buffer.from(rgba, 'base64'), w, h, size, mean, std);
    const step = (x) => ({ data: f32(x.data), h: x.h, w: x.w });
    return { gray: step(s.gray), cropped: step(s.cropped), fitted: step(s.fitted), centered: step(s.centered),
             resized: step(s.resized), tensor: f32(s.tensor) };
  } catch (e) { return { error: e.message }; }
});
process.stdout.write(JSON.stringify(out));
"""

pytestmark = pytest.mark.skipif(NODE is None and os.environ.get("CI", "").lower() != "true",
                                reason="Node.js is not installed: the JS port is not checked here")  # CI: fails


def run_js(images: list[np.ndarray], size: int = 28, mean: float = 0.1307, std: float = 0.3081) -> list[dict]:
    """Each (H, W, 4) uint8 image through preprocess.js: its steps as numpy arrays, or {'error': message}."""
    jobs = [{"rgba": base64.b64encode(np.ascontiguousarray(img).tobytes()).decode(), "h": img.shape[0],
             "w": img.shape[1], "size": size, "mean": mean, "std": std} for img in images]
    assert NODE is not None, "Node.js is not installed (CI=true: this test must run)"
    done = subprocess.run([NODE, "-e", RUNNER, str(PREPROCESS_JS)], input=json.dumps(jobs), capture_output=True,
                          text=True, timeout=120, check=True)

    def array(step):
        return np.frombuffer(base64.b64decode(step["data"]), np.float32).reshape(step["h"], step["w"])

    results = []
    for out in json.loads(done.stdout):
        if "error" not in out:
            out = {**{k: array(out[k]) for k in ("gray", "cropped", "fitted", "centered", "resized")},
                   "tensor": np.frombuffer(base64.b64decode(out["tensor"]), np.float32)}
        results.append(out)
    return results


@pytest.mark.parametrize("size,mean,std", [(28, 0.1307, 0.3081), (32, 0.2860, 0.3530)])
def test_every_step_matches_drawing_py(size, mean, std):
    images = drawings()
    assert len(images) >= 30
    flips = 0
    for i, (image, js) in enumerate(zip(images, run_js(images, size, mean, std), strict=True)):
        py = preprocess(image, size, mean, std)
        np.testing.assert_array_equal(js["gray"], py.gray, err_msg=f"drawing {i}")
        np.testing.assert_array_equal(js["cropped"], py.cropped, err_msg=f"drawing {i}")
        assert js["fitted"].shape == py.fitted.shape, f"drawing {i}"
        np.testing.assert_allclose(js["fitted"], py.fitted, rtol=0, atol=1e-6, err_msg=f"drawing {i}")
        assert js["centered"].shape == py.centered.shape == (28, 28)
        np.testing.assert_allclose(js["centered"], py.centered, rtol=0, atol=1e-6, err_msg=f"drawing {i}")
        diff = np.abs(js["resized"] - py.resized).max()
        assert diff <= GREY_LEVEL + 1e-6, f"drawing {i}: the model's view differs by {diff}"
        flips += diff > 1e-6
        np.testing.assert_allclose(js["tensor"].reshape(size, size), py.tensor[0, 0].numpy(), rtol=0,
                                   atol=GREY_LEVEL / std + 1e-5, err_msg=f"drawing {i}")
    assert flips <= 2, f"{flips} of {len(images)} drawings had a byte rounded the other way"


def test_a_blank_canvas_is_refused_with_the_same_sentence():
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    blank[100:102, 100:102, :3] = 255  # a speck: fewer inked pixels than the blank threshold
    (js,) = run_js([blank])
    with pytest.raises(ValueError) as refused:
        preprocess(blank)
    assert js == {"error": str(refused.value)}


def test_a_thin_upright_stroke_keeps_its_shape():
    """Fitted 20x1: torch 2.14's antialiased F.interpolate would repeat its top pixel down the column."""
    upright = edge_cases()[1]
    py = preprocess(upright)
    (js,) = run_js([upright])
    assert py.fitted.shape == js["fitted"].shape == (20, 1)
    assert py.fitted.min() > 0.9  # ink all the way down, not the faint top edge repeated
    np.testing.assert_allclose(js["fitted"], py.fitted, atol=1e-6)
