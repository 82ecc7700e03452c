"""CNN studio's Gradio twin: draw a digit → the top classes, the preprocessing steps and a layer's feature maps.

    python gradio_app.py    # http://127.0.0.1:7861 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT change it)

The same pipeline as the Streamlit app: cnn_core.drawing.preprocess, cnn_core.inspect, cnn_core.plots.
On a ZeroGPU Space the `spaces` package lends `train_on_gpu` a GPU for each call (elsewhere it runs as it is).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

try:  # Hugging Face's ZeroGPU: imported before torch, as it asks; absent (or a no-op) anywhere else
    import spaces
except ImportError:
    spaces = None

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from cnn_core.access import server_access
from cnn_core.checkpoints import Checkpoint, CheckpointError, available_checkpoints, load_checkpoint, save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS
from cnn_core.drawing import preprocess
from cnn_core.inspect import feature_maps, inspectable_layers, predict
from cnn_core.plots.inspect import feature_map_figure, image_strip
from cnn_core.runs import runs_dir
from cnn_core.runtime import serve_threads
from cnn_core.train import fit

ROOT = Path(__file__).resolve().parent
BLANK_HINT = ("✏️ Pick the brush (left of the sketchpad) and draw a digit — big, in the middle — "
              "and the model reads it.")
NO_MODEL_HINT = ("No trained model here yet: train one (`python -m cnn_core train`, or in the Streamlit app) "
                 "and reload this page.")


def checkpoint_choices() -> list[tuple[str, str]]:
    """(label, path) of every pretrained checkpoint and every run that has saved one. The twin knows no
    visitor, so where runs are private (hosted) it offers the pretrained checkpoints only."""
    runs = runs_dir()
    private = server_access(runs).private
    return [(entry.label, str(entry.path)) for entry in available_checkpoints(ROOT / "checkpoints", runs)
            if not (private and entry.kind == "run")]


def load_model(path: str) -> Checkpoint:
    """The checkpoint at `path`, one of `checkpoint_choices()` (any other path is refused: a request names
    the file, so it must not reach a file the page did not offer), loaded once per version of the file."""
    if path not in {choice for _, choice in checkpoint_choices()}:
        raise CheckpointError("This model is not one this page offers.")
    return _load(path, Path(path).stat().st_mtime)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Checkpoint:
    return load_checkpoint(Path(path))


def editor_image(value: dict[str, Any] | np.ndarray | None) -> np.ndarray | None:
    """A Sketchpad value → one image for `preprocess`, or None when there is nothing.

    An EditorValue ('background', 'layers', 'composite'; numpy images) gives the strokes of all its
    layers merged by alpha onto one transparent layer, so thin anti-aliased strokes keep their ink;
    without strokes, its composite (else its background), e.g. an uploaded digit. An array passes as it is.
    """
    if value is None or not isinstance(value, dict):
        return value
    layers = [np.asarray(layer) for layer in value.get("layers") or [] if layer is not None]
    alphas = [layer[..., 3] for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if alphas and max(int(a.max()) for a in alphas) > 0:
        merged = np.zeros((*alphas[0].shape, 4), dtype=np.uint8)
        merged[..., 3] = np.maximum.reduce(alphas)
        return merged
    for key in ("composite", "background"):
        if value.get(key) is not None:
            return np.asarray(value[key])
    return None


def layer_menu(checkpoint: str | None) -> gr.Dropdown:
    """The layers of `checkpoint` whose output is a stack of feature maps, the first one chosen."""
    try:
        layers = inspectable_layers(load_model(checkpoint).model) if checkpoint else []
    except (CheckpointError, OSError):
        layers = []
    return gr.Dropdown(choices=layers, value=layers[0] if layers else None, label="Layer for the feature maps")


def classify(drawing: dict[str, Any] | np.ndarray | None, checkpoint: str | None, layer: str | None
             ) -> tuple[dict[str, float] | None, go.Figure | None, go.Figure | None, str]:
    """Sketchpad value + checkpoint path + layer name → ({class: probability}, steps figure, maps figure, message)."""
    if not checkpoint:
        return None, None, None, NO_MODEL_HINT
    try:
        ckpt = load_model(checkpoint)
    except (CheckpointError, OSError) as e:
        return None, None, None, f"This model cannot be loaded: {e}"
    image = editor_image(drawing)
    if image is None:
        return None, None, None, BLANK_HINT
    try:
        steps = preprocess(image, ckpt.model.input_size, ckpt.info.mean, ckpt.info.std)
    except ValueError:
        return None, None, None, BLANK_HINT
    probs = predict(ckpt.model, steps.tensor)[0]  # pure functions of a frozen model: requests run at once
    layers = inspectable_layers(ckpt.model)
    layer = layer if layer in layers else (layers[0] if layers else None)
    maps = feature_maps(ckpt.model, steps.tensor, [layer])[layer] if layer else None
    titles, arrays = zip(*steps.steps(), strict=True)
    top = int(probs.argmax())
    message = f"The model reads **{ckpt.info.classes[top]}** ({probs[top]:.0%} sure)."
    if layer:
        message += f" Below: the {len(maps)} feature maps of layer `{layer}`."
    return ({name: float(p) for name, p in zip(ckpt.info.classes, probs, strict=True)},
            image_strip(list(arrays), list(titles), ncols=len(arrays)),
            feature_map_figure(maps) if maps is not None else None,
            message)


GPU_SECONDS = 120  # what a call may hold a ZeroGPU GPU for: a few epochs of LeNet on MNIST with time to spare
F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(duration: int) -> Callable[[F], F]:
    """spaces.GPU(duration=…) where the `spaces` package is installed (on a ZeroGPU Space each call of the
    decorated function gets a GPU for up to `duration` seconds; off Spaces the package changes nothing), else
    no decorator at all."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


@on_gpu(GPU_SECONDS)
def train_on_gpu(config: TrainConfig) -> Path:
    """Train `config` (device auto: the GPU that ZeroGPU lends for this call, else the CPU) and save the model
    in $CNN_RUNS_DIR/.gradio/; returns the checkpoint's path. A file, not the model: on ZeroGPU the call runs
    in a process of its own and what it returns is pickled back."""
    state = fit(config)
    path = runs_dir() / ".gradio" / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.model}-{os.getpid()}.safetensors"
    return save_checkpoint(path, state.model.cpu(), config, state.history, DATASETS[config.dataset])


def build_demo() -> gr.Blocks:
    serve_threads()
    choices = checkpoint_choices()
    first = choices[0][1] if choices else None
    with gr.Blocks(title="CNN studio · draw a digit") as demo:
        gr.Markdown("# 🧠 CNN studio · draw a digit\nA small CNN trained on MNIST reads your drawing. "
                    "See each preprocessing step and what a layer of the network computes from it.")
        with gr.Row():
            with gr.Column(scale=1):
                sketch = gr.Sketchpad(label="Draw a digit (pick the brush first)", canvas_size=(280, 280), format="png",
                                      brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"))
                model = gr.Dropdown(choices, value=first, label="Model")
                layer = layer_menu(first)
                button = gr.Button("Predict", variant="primary")
            with gr.Column(scale=1):
                message = gr.Markdown(BLANK_HINT if choices else NO_MODEL_HINT)
                label = gr.Label(num_top_classes=3, label="Prediction")
        steps = gr.Plot(label="Preprocessing: what the model sees")
        maps = gr.Plot(label="Feature maps")
        inputs, outputs = [sketch, model, layer], [label, steps, maps, message]
        button.click(classify, inputs, outputs, api_name="predict")
        sketch.change(classify, inputs, outputs, api_visibility="undocumented", show_progress="hidden")
        layer.change(classify, inputs, outputs, api_visibility="undocumented")
        model.change(layer_menu, model, layer, api_visibility="undocumented")
        demo.load(lambda: gr.Dropdown(choices=checkpoint_choices()), None, model, api_visibility="undocumented")
    return demo


if __name__ == "__main__":
    build_demo().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7861")))
