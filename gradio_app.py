"""CNN studio's Gradio twin: the studio in one page of tabs — train a CNN and watch its curves, look inside it, draw a
digit for it, and a convolution by hand.

    python gradio_app.py    # http://127.0.0.1:7861 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT change it)

Everything it computes comes from cnn_core, the Streamlit app's library; this file lays out the tabs and wires the
events. Each visitor is a random key kept in their browser (gr.BrowserState); their runs are theirs alone
(cnn_core.visitor_runs). On a ZeroGPU Space (the `spaces` package, SPACES_ZERO_GPU set) `train_on_gpu` gets a GPU for
each run, for a duration estimated from its config (cnn_core.gpu_time); anywhere else the decorator changes nothing
and runs train on CUDA if there is one, else on the CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import secrets
import time
from collections.abc import Callable, Iterator
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

try:  # Hugging Face's ZeroGPU: imported before torch, as it asks; absent (or a no-op) anywhere else
    import spaces
except ImportError:
    spaces = None

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from cnn_core import conv, explore
from cnn_core.access import is_key, kept_secret, new_key, server_access
from cnn_core.background import BackgroundFit
from cnn_core.checkpoints import Checkpoint, CheckpointError, available_checkpoints, load_checkpoint, save_checkpoint
from cnn_core.config import BATCH_SIZES, OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from cnn_core.data import DATASETS, DataError, data_dir, fetch, load_splits
from cnn_core.data import normalize as model_input
from cnn_core.events import TrainState
from cnn_core.gpu_time import ZEROGPU_MAX_S, time_request, train_images
from cnn_core.hosted import ZEROGPU_LIMITS, HostedLimits, apply_limits
from cnn_core.inspect import (confusion_matrix, conv_layers, feature_maps, input_templates, inspectable_layers, kernels,
                              mistakes, predict, split_predictions)
from cnn_core.live import analyse_drawing
from cnn_core.models import list_models, takes
from cnn_core.plots import lessons
from cnn_core.plots.inspect import confusion_figure, feature_map_figure, image_strip, kernel_figure, saliency_figure
from cnn_core.plots.training import curves_figure
from cnn_core.presets import DEFAULT_PRESET, PRESETS, recipe_of, reported
from cnn_core.runs import runs_dir
from cnn_core.runtime import serve_threads
from cnn_core.visitor_runs import VisitorRuns

ROOT = Path(__file__).resolve().parent
LINKS_FILE = ROOT / "links.json"  # written into the Space by deploy/space/assemble.py: the other Spaces, the repository
BLANK_HINT = ("✏️ Pick the brush (left of the sketchpad) and draw a digit — big, in the middle — "
              "and the model reads it.")
NO_MODEL_HINT = "No model to use here yet: train one in the **Train** tab."
NO_KEY = "⚠️ Your browser has no visitor key yet: reload the page (it keeps one so that your runs stay yours)."
TRAINABLE = [name for name in list_models() if name != "custom"]  # a layer stack of one's own: the Streamlit app
DRAW_CONCURRENCY = 8  # drawing and inspection requests served at once; training: one run at a time per replica
UPDATE_S = 1.0  # at most one curve update a second reaches the browser, epochs included: plotly redraws four panels
# each time, and a run of many short epochs (tiny data) sending each one kept Chromium too busy to take a screenshot
HEARTBEAT_S = 0.5  # the training generator yields at least this often, so that Cancel closes it soon
RUN_PREFIX = "run:"  # a model choice that names one of the visitor's runs (the others are pretrained files)


# ------------------------------------------------------------------------------------------------ where and how much


def on_zerogpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (the `spaces` package says so, from SPACES_ZERO_GPU)."""
    return spaces is not None and bool(spaces.config.Config.zero_gpu)


def twin_limits() -> HostedLimits:
    """ZeroGPU: a GPU per run, 10 epochs of every image (cnn_core.hosted.ZEROGPU_LIMITS); on any other Space, or
    with CNN_HOSTED=1, the Docker Space's limits (3 epochs of 20,000 images); locally none. CNN_MAX_* override each;
    runs train on CUDA where there is one either way."""
    base = ZEROGPU_LIMITS if on_zerogpu() else HostedLimits(enabled=gr.utils.get_space() is not None)
    return dataclasses.replace(HostedLimits.from_env(base=base), gpu=True)


def max_run_seconds() -> int | None:
    """The longest run allowed: what one ZeroGPU call may ask for there; $CNN_MAX_RUN_SECONDS elsewhere, if set."""
    return ZEROGPU_MAX_S if on_zerogpu() else int(os.environ.get("CNN_MAX_RUN_SECONDS", "0")) or None


def trains_on_gpu() -> bool:
    return on_zerogpu() or torch.cuda.is_available()


def visitor_runs() -> VisitorRuns:
    limits = twin_limits()
    return VisitorRuns(runs_dir() / ".gradio", max_age_s=limits.max_run_age_s if limits.enabled else None)


def links() -> dict[str, str]:
    """{"static", "docker", "repository": URL} from links.json (a Space's: the account that hosts the other Spaces
    defaults to this one's) and $CNN_STATIC_URL / $CNN_DOCKER_URL / $CNN_REPOSITORY_URL."""
    found = json.loads(LINKS_FILE.read_text()) if LINKS_FILE.is_file() else {}
    space = gr.utils.get_space()  # "owner/name" on a Space
    for name in ("static", "docker", "repository"):
        url = os.environ.get(f"CNN_{name.upper()}_URL") or found.get(name)
        found[name] = url.replace("/OWNER/", f"/{space.split('/')[0]}/") if url and space else url
    return {name: url for name, url in found.items() if url and "/OWNER/" not in url}


# ------------------------------------------------------------------------------------------------ models


def model_choices(key: str | None) -> list[tuple[str, str]]:
    """(label, value) of the visitor's own runs (newest first), then the pretrained checkpoints (and, locally, the
    Streamlit app's runs, which are everyone's there)."""
    runs = runs_dir()
    private = server_access(runs).private
    own = [(run.label, RUN_PREFIX + run.id) for run in visitor_runs().runs(key)]
    return own + [(entry.label, str(entry.path)) for entry in available_checkpoints(ROOT / "checkpoints", runs)
                  if not (private and entry.kind == "run")]


def load_model(key: str | None, choice: str) -> Checkpoint:
    """The checkpoint `choice` names, one of `model_choices(key)`: any other value (another visitor's run, a path
    the page did not offer) is refused. Loaded once per version of its file."""
    if choice not in {value for _, value in model_choices(key)}:
        raise CheckpointError("This model is not one this page offers.")
    if choice.startswith(RUN_PREFIX):
        run = visitor_runs().find(key, choice[len(RUN_PREFIX):])
        if run is None:
            raise CheckpointError("This run is gone (runs are kept a few hours): train another one.")
        path = run.path
    else:
        path = Path(choice)
    return _load(str(path), path.stat().st_mtime)


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> Checkpoint:
    return load_checkpoint(Path(path))


def model_menus(key: str | None) -> tuple[gr.Dropdown, gr.Dropdown]:
    """The Inspect and Draw tabs' model pickers for this visitor, their newest model chosen."""
    choices = model_choices(key)
    first = choices[0][1] if choices else None
    return gr.Dropdown(choices=choices, value=first), gr.Dropdown(choices=choices, value=first)


def visitor_key(key: str | None) -> str:
    """The visitor's key as their browser keeps it, or a new one for a browser that has none."""
    return key if is_key(key) else new_key()


# ------------------------------------------------------------------------------------------------ Train


def form_values(config: TrainConfig) -> list[Any]:
    """A config as the Train form's values, in FORM order."""
    return [getattr(config, name) if name != "softmax" else bool(config.model_args.get("softmax"))
            for name in FORM]


FORM = ("model", "softmax", "dataset", "epochs", "batch_size", "optimizer", "lr", "schedule", "augment", "normalize",
        "train_subset", "weight_decay", "momentum", "label_smoothing", "seed", "metrics_every")


def fill_form(recipe: str) -> list[Any]:
    """A recipe → its values in the form, and its note."""
    preset = PRESETS.get(recipe, PRESETS[DEFAULT_PRESET])
    return [*form_values(preset.config), preset.note]


def form_config(recipe: str, values: dict[str, Any]) -> TrainConfig:
    """The form's values over the recipe's config (what the form does not show, such as the validation images,
    stays the recipe's). Numbers come as the form sends them: whole ones where a config wants an int."""
    base = PRESETS.get(recipe, PRESETS[DEFAULT_PRESET]).config
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if name == "softmax" or value is None:
            continue
        kind = type(getattr(base, name))
        changes[name] = int(value) if kind is int and float(value).is_integer() else kind(value)
    model = changes.get("model", base.model)
    changes["model_args"] = {"softmax": True} if values.get("softmax") and takes(model, "softmax") else {}
    return dataclasses.replace(base, **changes, device="auto")


@dataclasses.dataclass(frozen=True)
class Plan:
    """A run the twin is about to start: its config (limits applied), what changed, what it trains on."""

    config: TrainConfig
    recipe: str | None  # the recipe the form was, before any limit (its tutorial's figure goes beside the result)
    notes: list[str]
    images: int  # training images per epoch
    gpu_seconds: int | None  # what the run asks ZeroGPU for (None: no limit here)


def plan_run(recipe: str, values: dict[str, Any]) -> Plan:
    """The form → the run to start, or ConfigError/DataError with the sentence to show (the same validation and
    limits as the Streamlit app; a run longer than a ZeroGPU call may be is refused here, before it starts)."""
    original = form_config(recipe, values)
    original.validate()
    config, notes = apply_limits(original, twin_limits())
    config.validate()
    splits = load_splits(config.dataset)
    n_train, n_test = len(splits["train"]), len(splits["test"])
    images = train_images(config, n_train)
    seconds = None
    if (most := max_run_seconds()) is not None:
        request = time_request(config, n_train, n_test, gpu=trains_on_gpu(), max_s=most)
        if refusal := request.refusal(config, images):
            raise ConfigError(refusal)
        seconds = request.seconds
    return Plan(config, recipe_of(original), notes, images, seconds)


def gpu_duration(config: TrainConfig, path: str, recipe: str | None = None) -> int:
    """What `train_on_gpu(config, …)` asks ZeroGPU for: the run's estimated seconds with a margin (plan_run has
    refused the runs that would want more than a call may ask for)."""
    splits = load_splits(config.dataset)
    return time_request(config, len(splits["train"]), len(splits["test"])).seconds


F = TypeVar("F", bound=Callable[..., Any])


def on_gpu(duration: Callable[..., int]) -> Callable[[F], F]:
    """spaces.GPU(duration=…) where the `spaces` package is installed (on a ZeroGPU Space each call of the
    decorated function gets a GPU for the seconds `duration(*args)` gives; off Spaces the package changes nothing),
    else no decorator at all."""
    if spaces is None:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def _save(path: Path, recipe: str | None, state: TrainState) -> Path:
    """The trained model at `path`, however the run ended, with how it ended and its recipe."""
    return save_checkpoint(path, state.model.cpu(), state.config, state.history, state.data.info,
                           extra={"status": state.status.value, "recipe": recipe, "device": state.device})


@on_gpu(gpu_duration)
def train_on_gpu(config: TrainConfig, path: str, recipe: str | None = None) -> Iterator[dict[str, Any] | None]:
    """Train `config` (device auto: the GPU ZeroGPU lends this call, which the data moves to, else CUDA, else the
    CPU) and save the model at `path` however the run ends. Yields each record as fit makes it (a dict) and None
    every HEARTBEAT_S without one: on ZeroGPU the call runs in a process of its own and what it yields is pickled
    back as it comes. Closing the generator (Cancel) stops the run at its next step."""
    run = BackgroundFit(config, finish=partial(_save, Path(path), recipe))
    try:
        yield from run.records(HEARTBEAT_S)
    finally:
        run.stop()


def _bar(fraction: float, width: int = 20) -> str:
    done = round(max(0.0, min(1.0, fraction)) * width)
    return "▰" * done + "▱" * (width - done) + f" {fraction:.0%}"


def progress_text(plan: Plan, history: list[dict[str, Any]], started: float) -> str:
    """Where the run is: epoch, step, images/s, seconds, a progress bar."""
    config = plan.config
    total = math.ceil(plan.images / config.batch_size) * config.epochs
    last = history[-1] if history else None
    if last is None:
        return (f"⏳ **Starting** `{config.model}` on {config.dataset} ({config.epochs} epochs of {plan.images:,} "
                f"images) · {time.monotonic() - started:.0f} s")
    epochs = [r for r in history if r["event"] == "epoch"]
    speed = epochs[-1]["images_per_s"] if epochs else last["step"] * config.batch_size / max(last["time"], 1e-9)
    return (f"🏋️ **Training** `{config.model}` · epoch {last['epoch']}/{config.epochs} · step {last['step']}/{total}"
            f" · {speed:,.0f} images/s · {time.monotonic() - started:.0f} s  \n{_bar(last['step'] / total)}")


def result_text(plan: Plan, history: list[dict[str, Any]]) -> str:
    """How the run ended, its accuracy, and the tutorial's figure beside it."""
    end = history[-1]
    test_acc = end.get("test_acc")
    epochs = [r for r in history if r["event"] == "epoch"]
    best = max((r["val_acc"] for r in epochs if r["val_acc"] is not None), default=None)
    speed = epochs[-1]["images_per_s"] if epochs else None
    lines = [f"✅ **{end['status'].replace('_', ' ').capitalize()}** after {end['step']} steps"
             + (f" · test accuracy **{test_acc:.2%}**" if test_acc is not None else "")
             + (f" · best validation {best:.2%}" if best is not None else "")
             + (f" · {speed:,.0f} images/s" if speed else "") + f" · {end['seconds']:.1f} s"]
    if end["status"] == "diverged":
        lines.append("The loss became NaN or infinite: the learning rate is probably too high. Try 10x smaller.")
    figure, by = reported(plan.recipe)
    if figure is not None:
        lines.append(f"{by} **{figure:.2%}** test accuracy"
                     + (f"; this run reached **{test_acc:.2%}**." if test_acc is not None else "."))
    lines.append("Your model is now in the **Inspect** and **Draw** tabs.")
    return "  \n".join(lines)


def train(key: str | None, recipe: str, model: str, softmax: bool, dataset: str, epochs: float, batch_size: int,
          optimizer: str, lr: float, schedule: str, augment: bool, normalize: bool, train_subset: float,
          weight_decay: float, momentum: float, label_smoothing: float, seed: float, metrics_every: float
          ) -> Iterator[tuple[Any, str, Any, Any]]:
    """The Train button: one run of this visitor's, streamed → (curves figure, status, Inspect's and Draw's model
    pickers) when new curve points came (the first at once, then at most every UPDATE_S), and once more at the end."""
    values = {name: value for name, value in locals().items() if name in FORM}
    if not is_key(key):
        yield None, NO_KEY, gr.skip(), gr.skip()
        return
    try:
        plan = plan_run(recipe, values)
    except (ConfigError, DataError) as e:
        yield None, f"⚠️ {e}", gr.skip(), gr.skip()
        return
    notes = "".join(f"ℹ️ {note}  \n" for note in plan.notes)
    if plan.gpu_seconds is not None and on_zerogpu():
        notes += (f"ℹ️ This run asks ZeroGPU for up to {plan.gpu_seconds} s of GPU time, counted against your daily "
                  "GPU quota (ZeroGPU says so if too little is left).  \n")
    started, history, pending = time.monotonic(), [], False
    drawn = ticked = -math.inf  # when the curves, and the status alone, were last sent: the first point goes at once
    yield None, notes + progress_text(plan, history, started), gr.skip(), gr.skip()
    path = visitor_runs().new_path(key, plan.config.model)
    try:
        with contextlib.closing(train_on_gpu(plan.config, str(path), plan.recipe)) as records:
            for record in records:
                if record is not None:
                    history.append(record)
                    pending = record["event"] != "end"  # the end comes with the result, below
                now = time.monotonic()
                if pending and now - drawn >= UPDATE_S:  # the new points, however many came since the last update
                    drawn = ticked = now
                    pending = False
                    yield curves_figure(history), notes + progress_text(plan, history, started), gr.skip(), gr.skip()
                elif record is None and now - ticked >= UPDATE_S:  # the seconds go on while nothing new came
                    ticked = now
                    yield gr.skip(), notes + progress_text(plan, history, started), gr.skip(), gr.skip()
    except (ConfigError, DataError) as e:
        yield gr.skip(), f"⚠️ {e}", gr.skip(), gr.skip()
        return
    except gr.Error as e:  # ZeroGPU's own refusals (quota exceeded, no GPU free) arrive as gr.Error
        yield gr.skip(), f"⚠️ {e.message}", gr.skip(), gr.skip()
        return
    yield (curves_figure(history), notes + result_text(plan, history), *model_menus(key))


# ------------------------------------------------------------------------------------------------ Inspect


@lru_cache(maxsize=8)
def _test_predictions(path: str, mtime: float, data_root: str, key: str | None, choice: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ckpt = load_model(key, choice)
    return split_predictions(ckpt.model, ckpt.info, load_splits(ckpt.info.name, Path(data_root))["test"])


def test_predictions(key: str | None, choice: str, ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (N,), predictions (N,), probabilities (N, K) of a model on its test set, computed once per file."""
    return _test_predictions(str(ckpt.path), ckpt.path.stat().st_mtime, str(data_dir()), key, choice)


def inspect_choices(key: str | None, choice: str | None) -> tuple[list[str], list[str], list[tuple[str, int]]]:
    """For a model: its conv layers (kernels), its feature-map layers, and its classes as (name, index)."""
    try:
        ckpt = load_model(key, choice) if choice else None
    except (CheckpointError, OSError):
        return [], [], []
    if ckpt is None:
        return [], [], []
    return conv_layers(ckpt.model), inspectable_layers(ckpt.model), [(c, i) for i, c in enumerate(ckpt.info.classes)]


def inspect_menus(key: str | None, choice: str | None) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown, gr.Dropdown]:
    """The Inspect tab's menus for a model: kernels' layer, feature maps' layer, the mistakes' two classes."""
    convs, maps, classes = inspect_choices(key, choice)
    return (gr.Dropdown(choices=convs, value=convs[0] if convs else None),
            gr.Dropdown(choices=maps, value=maps[0] if maps else None),
            gr.Dropdown(choices=classes, value=None), gr.Dropdown(choices=classes, value=None))


def inspect_model(key: str | None, choice: str | None, kernel_layer: str | None, map_layer: str | None,
                  index: float | None, true_class: int | None, pred_class: int | None
                  ) -> tuple[str, go.Figure | None, go.Figure | None, go.Figure | None, go.Figure | None]:
    """A model → (summary, its kernels, a test image with a layer's feature maps, the confusion matrix, the mistakes
    of one cell: `true_class` taken for `pred_class`, by default the most frequent confusion)."""
    if not choice:
        return NO_MODEL_HINT, None, None, None, None
    try:
        ckpt = load_model(key, choice)
        test = load_splits(ckpt.info.name)["test"]
    except (CheckpointError, OSError, DataError) as e:
        return f"⚠️ {e}", None, None, None, None
    model, classes = ckpt.model, ckpt.info.classes
    layers = conv_layers(model)
    if layers:
        layer = kernel_layer if kernel_layer in layers else layers[0]
        kernel_fig = kernel_figure(kernels(model, layer), layer)
    else:
        templates = input_templates(model)
        kernel_fig = kernel_figure(templates[1], f"{templates[0]}: first-layer weights", pixel=3) if templates else None
    i = int(index or 0) % len(test)
    x = model_input(test.images[i : i + 1], ckpt.info.mean, ckpt.info.std, model.input_size)
    probs = predict(model, x)[0]
    maps = feature_maps(model, x)
    map_layer = map_layer if map_layer in maps else next(iter(maps), None)
    title = f"#{i} · true {classes[int(test.labels[i])]} · predicted {classes[int(probs.argmax())]} ({probs.max():.0%})"
    maps_fig = (feature_map_figure(maps[map_layer], map_layer) if map_layer else
                image_strip([test.images[i].numpy()], [title], ncols=1, cell=200))
    labels, preds, probs_all = test_predictions(key, choice, ckpt)
    cm = confusion_matrix(labels, preds, len(classes))
    off = cm - np.diag(np.diag(cm))
    worst = np.unravel_index(np.argmax(off), cm.shape)
    t = int(true_class) if true_class is not None else int(worst[0])
    p = int(pred_class) if pred_class is not None else int(worst[1])
    idx, conf = mistakes(labels, preds, probs_all, t, p, limit=16)
    strip = (image_strip(list(test.images[idx].numpy()), [f"#{j} · {c:.0%}" for j, c in zip(idx, conf)], ncols=8)
             if len(idx) else None)
    summary = (f"**Test accuracy {np.trace(cm) / cm.sum():.2%}**: {cm.sum() - np.trace(cm):,} of {cm.sum():,} test "
               f"images are misclassified.  \nTest image {title}"
               + (f"; feature maps of `{map_layer}` below." if map_layer else
                  " (this model has no conv layer: it makes no feature maps).")
               + f"  \nMistakes: **{cm[t, p]}** images of {classes[t]} taken for {classes[p]}"
               + (", most confident first." if len(idx) else "." if t != p else " (the diagonal: correct ones)."))
    return summary, kernel_fig, maps_fig, confusion_figure(cm, classes, height=440), strip


# ------------------------------------------------------------------------------------------------ Draw


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


def layer_menu(key: str | None, choice: str | None) -> gr.Dropdown:
    """The layers of the chosen model whose output is a stack of feature maps, the first one chosen."""
    try:
        layers = inspectable_layers(load_model(key, choice).model) if choice else []
    except (CheckpointError, OSError):
        layers = []
    return gr.Dropdown(choices=layers, value=layers[0] if layers else None, label="Layer for the feature maps")


def classify(drawing: dict[str, Any] | np.ndarray | None, choice: str | None, layer: str | None,
             key: str | None = None) -> tuple[dict[str, float] | None, go.Figure | None, go.Figure | None,
                                              go.Figure | None, str]:
    """Sketchpad value + model choice + layer name → ({class: probability}, steps, feature maps, saliency, message):
    cnn_core.live.analyse_drawing, the Streamlit Draw page's call."""
    if not choice:
        return None, None, None, None, NO_MODEL_HINT
    try:
        ckpt = load_model(key, choice)
    except (CheckpointError, OSError) as e:
        return None, None, None, None, f"This model cannot be loaded: {e}"
    image = editor_image(drawing)
    layers = inspectable_layers(ckpt.model)
    try:
        seen = analyse_drawing(ckpt.model, ckpt.info, image, layer if layer in layers else next(iter(layers), None))
    except (ValueError, TypeError):  # blank (or nothing at all)
        return None, None, None, None, BLANK_HINT
    titles, arrays = zip(*seen.steps.steps(), strict=True)
    top = seen.prediction
    message = f"The model reads **{ckpt.info.classes[top]}** ({seen.confidence:.0%} sure)."
    if seen.layer:
        message += f" Below: the {len(seen.maps)} feature maps of layer `{seen.layer}`."
    return ({name: float(p) for name, p in zip(ckpt.info.classes, seen.probs, strict=True)},
            image_strip(list(arrays), list(titles), ncols=len(arrays)),
            feature_map_figure(seen.maps) if seen.maps is not None else None,
            saliency_figure(arrays[-1], seen.heat, "where the model looked"),
            message)


# ------------------------------------------------------------------------------------------------ Learn


def convolve(index: float | None, kernel: str, padding: float, stride: float) -> tuple[str, go.Figure | None,
                                                                                      go.Figure | None]:
    """A test digit and a named kernel → (the output-size formula and the check, input ⋆ kernel = output, the
    cross-correlation by hand next to F.conv2d)."""
    try:
        test = load_splits("mnist")["test"]
    except DataError as e:
        return f"⚠️ {e}", None, None
    i = int(index or 0) % len(test)
    image = test.images[i].float() / 255.0  # (28, 28) in [0, 1]
    try:
        weight = conv.make_kernel(kernel)
        lesson = explore.convolve_with_formula(image, weight, int(padding), int(stride))
        run = explore.hand_vs_conv2d(image, weight, int(padding), int(stride))
    except ValueError as e:
        text = str(e).rstrip(".")
        return f"⚠️ {text[:1].upper()}{text[1:]}.", None, None
    (oh, ow) = lesson.output.shape
    check = "✓ as the formula says" if (oh, ow) == lesson.predicted else "✗ not what the formula says"
    text = (f"Output rows: `{lesson.rows_formula}`, columns: `{lesson.cols_formula}` → F.conv2d gives "
            f"**(1, 1, {oh}, {ow})**, {check}.  \nBy hand (a loop over every output position): "
            f"{run.hand_seconds * 1e3:.1f} ms; F.conv2d: {run.torch_seconds * 1e3:.3f} ms; largest difference "
            f"{run.max_abs_diff:.1e}.")
    return (text, lessons.convolution_figure(image.numpy(), weight.numpy(), lesson.output.numpy()),
            lessons.hand_vs_torch_figure(run.by_hand.numpy(), run.by_torch.numpy()))


# ------------------------------------------------------------------------------------------------ the page


def header() -> str:
    found = links()
    more = [f"[{text}]({found[name]})" for name, text in (
        ("static", "the drawing-only page (runs in your browser, no server)"),
        ("docker", "the full Streamlit app (lessons, classroom mode)"),
        ("repository", "the source code")) if name in found]
    where = "on a GPU lent by ZeroGPU" if on_zerogpu() else "on this server's GPU" if torch.cuda.is_available() else \
        "on this server's CPU"
    return ("# 🧠 CNN studio\nTrain a small CNN on handwritten digits and watch its curves grow (it trains "
            f"{where}), look inside it, then draw a digit and see it read. Your runs are yours: nobody else sees "
            "them." + (f"  \nAlso: {' · '.join(more)}." if more else ""))


def limits_text() -> str:
    limits = twin_limits()
    if not limits.enabled:
        return "Runs train one at a time; others wait in the queue."
    return (f"Here a run trains at most {limits.max_epochs} epochs on {limits.max_train_subset:,} images"
            + (f", within {max_run_seconds()} s of GPU time" if on_zerogpu() else "")
            + "; runs train one at a time and are kept a few hours.")


def build_demo() -> gr.Blocks:
    serve_threads()
    choices = model_choices(None)
    first = choices[0][1] if choices else None
    preset = PRESETS[DEFAULT_PRESET]
    secret = kept_secret(runs_dir() / ".gradio" / ".browser-secret", lambda: secrets.token_hex(16))
    with gr.Blocks(title="CNN studio") as demo:
        visitor = gr.BrowserState(None, storage_key="cnn_studio_visitor", secret=secret)
        gr.Markdown(header())
        with gr.Tabs():
            with gr.Tab("Train", id="train"):
                with gr.Row():
                    with gr.Column(scale=2, min_width=320):
                        recipe = gr.Dropdown(list(PRESETS), value=DEFAULT_PRESET, label="Recipe",
                                             info="Each tutorial's recipe; its reported accuracy appears beside yours.")
                        note = gr.Markdown(preset.note)
                        values = dict(zip(FORM, form_values(preset.config), strict=True))
                        form: dict[str, gr.components.Component] = {}
                        with gr.Row():
                            form["model"] = gr.Dropdown(TRAINABLE, value=values["model"], label="Model")
                            form["dataset"] = gr.Dropdown(list(DATASETS), value=values["dataset"], label="Dataset")
                        with gr.Row():
                            form["epochs"] = gr.Number(values["epochs"], label="Epochs", precision=0)
                            form["batch_size"] = gr.Dropdown(list(BATCH_SIZES), value=values["batch_size"],
                                                             label="Batch size")
                            form["optimizer"] = gr.Dropdown(list(OPTIMIZERS), value=values["optimizer"],
                                                            label="Optimizer")
                        with gr.Row():
                            form["lr"] = gr.Number(values["lr"], label="Learning rate")
                            form["schedule"] = gr.Dropdown(list(SCHEDULES), value=values["schedule"],
                                                           label="LR schedule")
                            form["train_subset"] = gr.Number(values["train_subset"], precision=0,
                                                             label="Training images (0: all)")
                        with gr.Row():
                            form["augment"] = gr.Checkbox(values["augment"], label="Augment (shift, rotate, scale)")
                            form["normalize"] = gr.Checkbox(values["normalize"], label="Normalize inputs")
                            form["softmax"] = gr.Checkbox(values["softmax"], label="End in a softmax (the course "
                                                          "notebook's flaw: its MLP and LeNet)")
                        with gr.Accordion("More settings", open=False), gr.Row():
                            form["weight_decay"] = gr.Number(values["weight_decay"], label="Weight decay")
                            form["momentum"] = gr.Number(values["momentum"], label="Momentum")
                            form["label_smoothing"] = gr.Number(values["label_smoothing"], label="Label smoothing")
                            form["seed"] = gr.Number(values["seed"], precision=0, label="Seed")
                            form["metrics_every"] = gr.Number(values["metrics_every"], precision=0,
                                                              label="Report every N steps")
                        gr.Markdown(limits_text())
                        with gr.Row():
                            start = gr.Button("Train", variant="primary", interactive=False)  # until the key came
                            cancel = gr.Button("Cancel", variant="stop")
                    with gr.Column(scale=3):
                        status = gr.Markdown("Choose a recipe or a model and press **Train**: the curves appear "
                                             "here as the model trains.")
                        curves = gr.Plot(label="Training curves")
            with gr.Tab("Inspect", id="inspect") as inspect_tab:
                convs, layers, classes = inspect_choices(None, first)
                with gr.Row():
                    inspect_pick = gr.Dropdown(choices, value=first, label="Model", scale=3)
                    index = gr.Number(0, precision=0, label="Test image (index)")
                with gr.Row():
                    kernel_layer = gr.Dropdown(convs, value=convs[0] if convs else None, label="Kernels of layer")
                    map_layer = gr.Dropdown(layers, value=layers[0] if layers else None, label="Feature maps of layer")
                    true_class = gr.Dropdown(classes, value=None, label="Mistakes: true class")
                    pred_class = gr.Dropdown(classes, value=None, label="taken for")
                look = gr.Button("Inspect", variant="primary")
                summary = gr.Markdown()
                with gr.Row():
                    kernel_plot = gr.Plot(label="Kernels")
                    maps_plot = gr.Plot(label="Feature maps of the test image")
                with gr.Row():
                    confusion_plot = gr.Plot(label="Confusion matrix (rows: true class)")
                    mistakes_plot = gr.Plot(label="Mistakes")
            with gr.Tab("Draw", id="draw") as draw_tab:
                with gr.Row():
                    with gr.Column(scale=1):
                        sketch = gr.Sketchpad(label="Draw a digit (pick the brush first)", canvas_size=(280, 280),
                                              elem_id="sketch", format="png",
                                              brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"))
                        draw_pick = gr.Dropdown(choices, value=first, label="Model")
                        layer = layer_menu(None, first)
                        predict_button = gr.Button("Predict", variant="primary")
                    with gr.Column(scale=1):
                        message = gr.Markdown(BLANK_HINT if choices else NO_MODEL_HINT)
                        label = gr.Label(num_top_classes=3, label="Prediction")
                        heat = gr.Plot(label="Saliency")
                steps = gr.Plot(label="Preprocessing: what the model sees")
                maps = gr.Plot(label="Feature maps")
            with gr.Tab("Learn", id="learn"):
                gr.Markdown("A kernel slides over a digit: each output pixel adds up kernel × patch. The same sum "
                            "by hand, a loop over every output position, and by `F.conv2d`.")
                with gr.Row():
                    digit = gr.Number(0, precision=0, label="MNIST test digit (index)")
                    kernel = gr.Dropdown(list(conv.KERNELS), value="sobel_x", label="Kernel")
                    padding = gr.Slider(0, 4, 0, step=1, label="Padding")
                    stride = gr.Slider(1, 4, 1, step=1, label="Stride")
                lesson_text = gr.Markdown()
                lesson_plot = gr.Plot(label="input ⋆ kernel = output")
                hand_plot = gr.Plot(label="By hand vs F.conv2d")

        fields = [form[name] for name in FORM]
        recipe.change(fill_form, recipe, [*fields, note], api_visibility="undocumented")
        run = start.click(train, [visitor, recipe, *fields], [curves, status, inspect_pick, draw_pick],
                          api_name="train", concurrency_limit=1, concurrency_id="train")
        cancel.click(lambda: "⏹️ Cancelled: the run stops at its next step and is kept, as it is, in Inspect and "
                     "Draw.", None, status, cancels=[run], api_visibility="undocumented")

        inspect_inputs = [visitor, inspect_pick, kernel_layer, map_layer, index, true_class, pred_class]
        inspect_outputs = [summary, kernel_plot, maps_plot, confusion_plot, mistakes_plot]
        look.click(inspect_model, inspect_inputs, inspect_outputs, api_name="inspect")
        inspect_pick.change(inspect_menus, [visitor, inspect_pick], [kernel_layer, map_layer, true_class, pred_class],
                            api_visibility="undocumented")

        draw_inputs, draw_outputs = [sketch, draw_pick, layer, visitor], [label, steps, maps, heat, message]
        predict_button.click(classify, draw_inputs, draw_outputs, api_name="predict", concurrency_id="draw")
        sketch.change(classify, draw_inputs, draw_outputs, api_visibility="undocumented", show_progress="hidden",
                      concurrency_id="draw")
        layer.change(classify, draw_inputs, draw_outputs, api_visibility="undocumented", concurrency_id="draw")
        draw_pick.change(layer_menu, [visitor, draw_pick], layer, api_visibility="undocumented")

        lesson_inputs = [digit, kernel, padding, stride]
        for trigger in (kernel.change, padding.change, stride.change, digit.submit):
            trigger(convolve, lesson_inputs, [lesson_text, lesson_plot, hand_plot], api_visibility="undocumented")

        for tab in (inspect_tab, draw_tab):  # a run that ended meanwhile (or was cancelled) shows up
            tab.select(model_menus, visitor, [inspect_pick, draw_pick], api_visibility="undocumented")
        demo.load(visitor_key, visitor, visitor, api_name="visitor").then(
            model_menus, visitor, [inspect_pick, draw_pick], api_name="models").then(
            lambda: gr.Button(interactive=True), None, start, api_visibility="undocumented")
        demo.load(convolve, lesson_inputs, [lesson_text, lesson_plot, hand_plot], api_name="convolve")
    demo.queue(default_concurrency_limit=DRAW_CONCURRENCY)
    return demo


def fetch_missing_data() -> None:
    """On a Space nobody ran `make data`: fetch each data set that is missing (once; a restart finds them)."""
    for name in DATASETS:
        with contextlib.suppress(DataError):  # the Train tab then says what is missing
            fetch(name, log=print)


if __name__ == "__main__":
    if gr.utils.get_space():
        fetch_missing_data()
    build_demo().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7861")), run_history=False)
