"""The web export (cnn_core/webpage.py): the two-output ONNX model, the page's parts, vendoring onnxruntime-web.

What the page does in a browser is tested in tests/e2e/test_e2e_web.py; here, what it is made of.
"""

import base64
import gzip
import json
import os
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cnn_core.checkpoints import load_checkpoint
from cnn_core.export import onnx_model
from cnn_core.inspect import feature_maps, predict
from cnn_core.webpage import (NO_RUNTIME, ORT_JS, ORT_WASM, VENDOR, NoRuntime, default_layer, export_web,
                              runtime_version, vendor_runtime, web_page)
from tests.conftest import save_mlp, save_tiny

needs_runtime = pytest.mark.skipif(runtime_version() is None and os.environ.get("CI", "").lower() != "true",
                                   reason=f"not tested here: {NO_RUNTIME}")


@pytest.fixture
def tiny(tmp_path):
    return load_checkpoint(save_tiny(tmp_path / "tiny.safetensors"))


def run_onnx(proto, x: torch.Tensor) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x.numpy()}), strict=True))


@pytest.mark.parametrize("layer", ["conv1", "pool2"])
def test_onnx_model_returns_a_layers_maps_as_a_second_output(tiny, layer):
    proto = onnx_model(tiny, layer)
    assert [o.name for o in proto.graph.output] == ["logits", "maps"]
    assert {p.key: p.value for p in proto.metadata_props}["maps_layer"] == layer
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    out = run_onnx(proto, x)
    np.testing.assert_allclose(out["logits"], tiny.model(x).detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(out["maps"][0], feature_maps(tiny.model, x, [layer])[layer], atol=1e-5)


def test_onnx_model_without_a_layer_has_logits_only_and_a_wrong_layer_is_named(tiny):
    assert [o.name for o in onnx_model(tiny).graph.output] == ["logits"]
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        onnx_model(tiny, "conv9")


def page_parts(html: str) -> dict[str, str]:
    """The page's data blocks: <script ... id="X">content</script> → {X: content}."""
    return dict(re.findall(r'<script type="[^"]+" id="([\w-]+)">(.*?)</script>', html, re.DOTALL))


@needs_runtime
def test_the_page_holds_the_model_the_runtime_and_the_scripts(tiny):
    html = web_page(tiny)
    parts = page_parts(html)
    assert not re.search(r"\{\{\w+\}\}", html) and "<title>CNN studio · custom · mnist</title>" in html
    meta = json.loads(parts["meta"])
    assert meta["layer"] == default_layer(tiny) == "conv1" and meta["maps_shape"] == [4, 28, 28]
    assert (meta["input_size"], meta["mean"], meta["std"]) == (28, 0.1307, 0.3081)
    assert meta["classes"] == [str(i) for i in range(10)] and meta["onnxruntime_web"] == runtime_version()
    model = onnx.load_from_string(base64.b64decode(parts["model-onnx"]))
    assert [o.name for o in model.graph.output] == ["logits", "maps"]
    assert base64.b64decode(parts["ort-js"]) == (VENDOR / ORT_JS).read_bytes()
    assert gzip.decompress(base64.b64decode(parts["ort-wasm-gz"]))[:4] == b"\0asm"  # a WebAssembly module
    assert "root.cnnPreprocess = factory()" in html and "window.cnnStudio = " in html  # preprocess.js, page.js
    scripts = re.findall(r"<script(?: type=\"module\")?>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 2 and not any(re.search(r"https?://", s) for s in scripts)  # nothing fetched at run time


@needs_runtime
def test_the_page_runs_the_model_it_holds(tiny):
    """The ONNX model inside the page, run by onnxruntime here: the same probabilities as the checkpoint."""
    model = base64.b64decode(page_parts(web_page(tiny, "act2"))["model-onnx"])
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    logits, maps = session.run(["logits", "maps"], {"input": x.numpy()})
    np.testing.assert_allclose(torch.softmax(torch.from_numpy(logits), 1).numpy(), predict(tiny.model, x), atol=1e-5)
    assert maps.shape == (3, 6, 14, 14)


@needs_runtime
def test_a_model_without_conv_layers_gets_a_page_without_maps(tmp_path):
    mlp = load_checkpoint(save_mlp(tmp_path / "mlp.safetensors"))
    parts = page_parts(web_page(mlp))
    assert json.loads(parts["meta"])["layer"] is None
    assert [o.name for o in onnx.load_from_string(base64.b64decode(parts["model-onnx"])).graph.output] == ["logits"]
    with pytest.raises(ValueError, match="no conv layer"):
        web_page(mlp, "fc1")


@needs_runtime
def test_a_layer_without_maps_is_refused_with_the_choices(tiny):
    with pytest.raises(ValueError, match="choose one of conv1, act1, pool1, conv2, act2, pool2"):
        web_page(tiny, "flatten")


@needs_runtime
def test_export_web_writes_one_html_file(tiny, tmp_path):
    path = export_web(tiny, tmp_path / "out")
    assert path.name == "custom-mnist.html" and list(path.parent.iterdir()) == [path]
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_without_the_runtime_the_page_says_how_to_get_it(tiny, tmp_path):
    with pytest.raises(NoRuntime, match="make web"):
        web_page(tiny, vendor=tmp_path / "empty")


def test_vendoring_copies_the_module_and_gzips_the_wasm(tmp_path):
    package = tmp_path / "node_modules" / "onnxruntime-web"
    (package / "dist").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "onnxruntime-web", "version": "9.8.7"}))
    (package / "dist" / ORT_JS).write_text("export const x = 1;\n//# sourceMappingURL=ort.wasm.bundle.min.mjs.map\n")
    wasm = b"\0asm" + bytes(range(256)) * 10
    (package / "dist" / ORT_WASM).write_bytes(wasm)
    out = vendor_runtime(package, tmp_path / "vendor")
    assert runtime_version(out) == "9.8.7"
    assert (out / ORT_JS).read_text() == "export const x = 1;"  # no source map to look for
    first = (out / f"{ORT_WASM}.gz").read_bytes()
    assert gzip.decompress(first) == wasm
    assert vendor_runtime(package, out) == out and (out / f"{ORT_WASM}.gz").read_bytes() == first  # reproducible
