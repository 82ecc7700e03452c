"""A checkpoint as one web page: the canvas, the preprocessing and the model all run in the browser.

    python -m cnn_core export CHECKPOINT --format web [--layer conv1] --out build/web   # <model>-<dataset>.html

One self-contained HTML file, so that it opens from a USB stick (file://, where a page may fetch nothing)
as well as from any static host: the model as ONNX with one layer's feature maps as a second output,
onnxruntime-web's WebAssembly build (vendored from the npm package by `make web`; the .wasm inlined gzipped,
about 5 MB in all), cnn_core/web/preprocess.js (cnn_core/drawing.py's port) and cnn_core/web/page.js.
Nothing is fetched when the page runs; it needs a browser with WebAssembly SIMD and DecompressionStream
(Chrome/Edge 91+, Firefox 113+, Safari 16.4+).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from cnn_core.checkpoints import Checkpoint
from cnn_core.export import _prepare, base_name, onnx_model
from cnn_core.inspect import feature_maps, inspectable_layers

WEB = Path(__file__).resolve().parent / "web"
VENDOR = WEB / "vendor"  # filled by `make web`; not in git
ORT_JS = "ort.wasm.bundle.min.mjs"  # onnxruntime-web as one ES module, its WebAssembly loader inside
ORT_WASM = "ort-wasm-simd-threaded.wasm"  # the plain WebAssembly build (no WebGPU/JSEP), run on one thread here
VERSION = "VERSION"
NO_RUNTIME = ("The web page needs onnxruntime-web, which is not installed here: run `make web` (it installs the npm "
              "package), then try again.")


class NoRuntime(RuntimeError):
    """onnxruntime-web has not been vendored into cnn_core/web/vendor/ (`make web`)."""


def vendor_runtime(package: Path, out: Path = VENDOR) -> Path:
    """node_modules/onnxruntime-web → `out`: the ES module (its source-map line dropped), the .wasm gzipped
    (reproducibly) and a VERSION file; returns `out`."""
    package, out = Path(package), Path(out)
    version = json.loads((package / "package.json").read_text())["version"]
    out.mkdir(parents=True, exist_ok=True)
    js = (package / "dist" / ORT_JS).read_text()
    kept = (line for line in js.splitlines() if not line.startswith("//# sourceMappingURL"))  # no map to fetch
    (out / ORT_JS).write_text("\n".join(kept))
    (out / f"{ORT_WASM}.gz").write_bytes(gzip.compress((package / "dist" / ORT_WASM).read_bytes(), 9, mtime=0))
    (out / VERSION).write_text(f"{version}\n")
    return out


def runtime_version(folder: Path = VENDOR) -> str | None:
    """The vendored onnxruntime-web's version, or None when `make web` has not run."""
    try:
        return (Path(folder) / VERSION).read_text().strip()
    except OSError:
        return None


@lru_cache(maxsize=2)
def _runtime(folder: str, version: str) -> tuple[str, str]:
    """(ES module as base64, gzipped .wasm as base64): read once per vendored version."""
    folder = Path(folder)
    return (base64.b64encode((folder / ORT_JS).read_bytes()).decode(),
            base64.b64encode((folder / f"{ORT_WASM}.gz").read_bytes()).decode())


def default_layer(ckpt: Checkpoint) -> str | None:
    """The layer whose feature maps a page shows unless told: the first image-stack layer, None for an MLP."""
    layers = inspectable_layers(ckpt.model)
    return layers[0] if layers else None


def page_metadata(ckpt: Checkpoint, layer: str | None, ort_version: str) -> dict[str, Any]:
    """What page.js needs besides the model: input size, normalization, classes, the maps' layer and shape."""
    size = ckpt.model.input_size
    blank = torch.zeros(1, 1, size, size)
    maps = None if layer is None else list(feature_maps(ckpt.model, blank, [layer])[layer].shape)  # (C, H, W)
    return {
        "title": f"{ckpt.meta['model']} · {ckpt.info.name}",
        "model": ckpt.meta["model"], "dataset": ckpt.info.name, "classes": list(ckpt.info.classes),
        "input_size": size, "mean": ckpt.info.mean, "std": ckpt.info.std, "layer": layer, "maps_shape": maps,
        "test_acc": ckpt.test_acc, "source": ckpt.path.name, "exported_at": time.strftime("%Y-%m-%d %H:%M"),
        "onnxruntime_web": ort_version,
    }


def _json_for_html(value: Any) -> str:
    """JSON that cannot end the <script> element it sits in."""
    return json.dumps(value).replace("<", "\\u003c")


def web_page(ckpt: Checkpoint, layer: str | None = None, vendor: Path = VENDOR) -> str:
    """The whole page as HTML text. `layer` (default: `default_layer`) is the one whose feature maps it shows.

    Raises NoRuntime when onnxruntime-web is not vendored, ValueError (a sentence) for a layer without maps."""
    version = runtime_version(vendor)
    if version is None:
        raise NoRuntime(NO_RUNTIME)
    layers = inspectable_layers(ckpt.model)
    layer = default_layer(ckpt) if layer is None else layer
    if layer is not None and layer not in layers:
        raise ValueError(f"Layer {layer!r} of {ckpt.meta['model']} gives no feature maps; choose one of "
                         f"{', '.join(layers) or 'none (this model has no conv layer)'}.")
    ort_js, ort_wasm = _runtime(str(vendor), version)
    model = base64.b64encode(onnx_model(ckpt, layer).SerializeToString()).decode()
    meta = page_metadata(ckpt, layer, version)
    parts = {  # {{NAME}} in page.html; filled in one pass, so nothing inserted is read as a placeholder
        "TITLE": html.escape(f"CNN studio · {meta['title']}"), "META": _json_for_html(meta), "MODEL": model,
        "ORT_JS": ort_js, "ORT_WASM": ort_wasm, "ORT_VERSION": version,
        "PREPROCESS_JS": (WEB / "preprocess.js").read_text(), "PAGE_JS": (WEB / "page.js").read_text(),
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], (WEB / "page.html").read_text())


def web_file_name(ckpt: Checkpoint) -> str:
    """'<model>-<dataset>.html', e.g. 'lenet5_bn-mnist.html'."""
    return f"{base_name(ckpt)}.html"


def export_web(ckpt: Checkpoint | Path | str, folder: Path, layer: str | None = None) -> Path:
    """`<model>-<dataset>.html` in `folder`: the stand-alone page (see `web_page`)."""
    ckpt, folder = _prepare(ckpt, folder)
    path = folder / web_file_name(ckpt)
    path.write_text(web_page(ckpt, layer), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m cnn_core.webpage PACKAGE_DIR`: vendor onnxruntime-web (what `make web` runs after npm ci)."""
    import argparse

    parser = argparse.ArgumentParser(description="Vendor onnxruntime-web's WebAssembly build for the web export.")
    parser.add_argument("package", type=Path, help="the npm package's folder, e.g. node_modules/onnxruntime-web")
    parser.add_argument("--out", type=Path, default=VENDOR, help=f"where to write it (default: {VENDOR})")
    args = parser.parse_args(argv)
    out = vendor_runtime(args.package, args.out)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"onnxruntime-web {runtime_version(out)} → {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
