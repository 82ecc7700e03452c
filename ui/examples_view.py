"""The "Your examples" page's parts: the classes, a canvas and PNG uploads that collect examples (kept in this
session), the gallery, the fine-tuning settings, and the before/after of a fine-tune (cnn_core/finetune.py)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from cnn_core.checkpoints import Checkpoint
from cnn_core.data import DATASETS, DataError, Split, load_splits
from cnn_core.drawing import MAX_PNG_BYTES, decode_png, preprocess, scaled_stroke
from cnn_core.finetune import FineTuned, limits, parse_classes
from cnn_core.plots.inspect import image_strip
from cnn_core.plots.lessons import mosaic
from ui.jobs import hosted_limits
from ui.model_picker import add_session_model, open_model_in
from ui.viewport import canvas_side, plotly_chart

EXAMPLES = "examples"  # st.session_state: [(class name, (28, 28) uint8 image)], this session's only
RESULT = "fine_tuned"  # st.session_state: (picker label, FineTuned, its examples (N, 28, 28)) of the last fine-tune
CANVAS_HOOK = "examples_canvas"  # test hook: an RGBA array in its place stands in for the canvas (AppTest cannot draw)
SHOWN_PER_CLASS = 10  # examples per class in the gallery
PEN = 18  # the pen on a 280-px canvas, as the Draw page's default


def hosted() -> bool:
    return hosted_limits().enabled


def class_names(ckpt: Checkpoint) -> tuple[str, ...] | None:
    """The classes the examples are of: the model's own by default (digits), or names of one's own; None (after
    saying why) when the names do not work."""
    text = st.text_input("Classes, separated by commas", ", ".join(ckpt.info.classes), key="examples_classes",
                         help="Keep the model's classes to teach it your handwriting, or name your own (e.g. A, B, "
                              "C or ○, △, □): the model then gets a new last layer for them.")
    try:
        return parse_classes(text)
    except ValueError as e:
        st.error(str(e))
        return None


def examples() -> list[tuple[str, np.ndarray]]:
    return st.session_state.setdefault(EXAMPLES, [])


def _add(name: str, image: np.ndarray, source: str) -> str | None:
    """Preprocess a drawing (H, W[, 3|4]) as the Draw page does and keep it as an example of `name`; the sentence
    saying why not, or None."""
    most, _ = limits(hosted())
    if len(examples()) >= most:
        return f"{source}: there are {most} examples already, as many as fine-tuning takes here."
    try:
        steps = preprocess(image)
    except ValueError as e:  # blank
        return f"{source}: {e}"
    examples().append((name, np.round(steps.centered * 255).astype(np.uint8)))
    return None


def _uploaded(key: str, name: str) -> None:
    """The PNG uploader's callback: each file decoded safely and kept as an example of `name`; a fresh uploader."""
    problems = []
    for file in st.session_state.get(key) or []:
        try:
            problem = _add(name, decode_png(file.getvalue(), file.name), file.name)
        except ValueError as e:
            problem = str(e)
        if problem:
            problems.append(problem)
    st.session_state["examples_upload_problems"] = problems
    st.session_state["examples_upload_version"] = st.session_state.get("examples_upload_version", 0) + 1


def collect(classes: tuple[str, ...], phone: bool) -> None:
    """A canvas (or PNG uploads) and the class it is of; "Add this example" keeps it, the canvas starts afresh."""
    draw, upload = (st.container(), st.container()) if phone else st.columns(2, gap="large")
    with draw:
        if st.session_state.get("examples_class") not in classes:  # the classes were renamed
            st.session_state.pop("examples_class", None)
        name = st.selectbox("This example is of class", classes, key="examples_class")
        version = st.session_state.setdefault("examples_canvas_version", 0)
        slot = st.empty()
        canvas = _canvas(slot, version)
        if st.button("Add this example", type="primary", icon="➕", key="examples_add"):
            image = st.session_state.get(CANVAS_HOOK)
            image = canvas.image_data if image is None else image
            problem = "The canvas is blank: draw an example, then add it." if image is None else _add(name, image,
                                                                                                     "This drawing")
            if problem:
                st.warning(problem)
            else:  # a fresh canvas, in its place, for the next one
                st.session_state["examples_canvas_version"] = version + 1
                _canvas(slot, version + 1)
    with upload:
        key = f"examples_upload_{st.session_state.get('examples_upload_version', 0)}"
        st.file_uploader(f"Or upload drawings of {name} (PNG, at most {MAX_PNG_BYTES // 2**20} MB each)", type=["png"],
                         accept_multiple_files=True, max_upload_size=MAX_PNG_BYTES // 2**20, key=key,
                         on_change=_uploaded, args=(key, name))
        for problem in st.session_state.get("examples_upload_problems", []):
            st.warning(problem)
        gallery(classes, phone)


def _canvas(slot, version: int):
    """The drawing canvas (a new `version`, a fresh one) in `slot`: as wide as a phone's page, else 280 px."""
    from streamlit_drawable_canvas import st_canvas  # importable only inside a running Streamlit script

    side = canvas_side()
    with slot:
        return st_canvas(stroke_width=scaled_stroke(PEN, side), stroke_color="#FFFFFF", background_color="#000000",
                         width=side, height=side, update_streamlit=True, return_image_data=True,
                         key=f"examples-canvas-{version}")


def gallery(classes: tuple[str, ...], phone: bool) -> None:
    """The examples so far, a row per class (as the model will see them, 28x28), with counts; remove or clear."""
    kept = examples()
    counts = {name: sum(1 for n, _ in kept if n == name) for name in classes}
    other = len(kept) - sum(counts.values())
    st.markdown(" · ".join(f"**{name}** {n}" for name, n in counts.items()) + f" · {len(kept)} examples in all")
    if other:
        st.caption(f"{other} of them are of classes no longer named above: they are left out.")
    rows = [[image for n, image in kept if n == name][-SHOWN_PER_CLASS:] for name in classes if counts[name]]
    if not rows:
        st.info("No examples yet: draw one, pick its class and press **Add this example** (or upload PNGs). A "
                "handful per class is enough.")
        return
    grid = np.full((len(rows), max(map(len, rows)), 28, 28), np.nan)
    for r, row in enumerate(rows):
        grid[r, : len(row)] = np.stack(row) / 255
    plotly_chart(mosaic(grid, [name for name in classes if counts[name]], gap=2, cell=40 if phone else 48),
                 key="examples_gallery")
    remove, clear = st.columns(2)
    remove.button("Remove the last", key="examples_remove", width="stretch", on_click=kept.pop)
    clear.button("Remove all", key="examples_clear", width="stretch", on_click=kept.clear)


def arrays(classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The examples of the named classes: images (N, 28, 28) uint8 and labels (N,) indexing `classes`."""
    chosen = [(classes.index(n), image) for n, image in examples() if n in classes]
    if not chosen:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    labels, images = zip(*chosen, strict=True)
    return np.stack(images), np.array(labels, dtype=np.int64)


def settings() -> dict:
    """Epochs, learning rate and which layers learn."""
    _, most_epochs = limits(hosted())
    c1, c2 = st.columns(2)
    epochs = c1.slider("Epochs", 1, most_epochs, min(15, most_epochs), key="examples_epochs",
                       help="Passes over your examples, each lightly shifted, rotated and scaled.")
    lr = c2.select_slider("Learning rate (Adam)", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], 1e-3, key="examples_lr")
    whole = st.radio("What learns", ["every layer", "the last layer only"], horizontal=True, key="examples_whole",
                     help="The last layer only: the features stay as the model learned them on its data set.")
    return {"epochs": int(epochs), "lr": float(lr), "whole": whole == "every layer"}


def test_split(ckpt: Checkpoint, classes: tuple[str, ...]) -> Split | None:
    """The model's test set when the examples are of its own classes (read before and after), else None."""
    if classes != tuple(ckpt.info.classes) or ckpt.info.name not in DATASETS:
        return None
    try:
        return load_splits(ckpt.info.name)["test"]
    except DataError:
        return None


def keep(result: FineTuned, images: np.ndarray) -> None:
    """Remember the fine-tune (and the examples it learned from) for this session and offer its model in this
    session's pickers (not picked here: this page's picker keeps the model fine-tuning starts from)."""
    label = f"fine-tuned · {result.checkpoint.meta['model']} · {', '.join(result.report.classes)}"[:80]
    add_session_model(label, result.checkpoint, pick=False)
    st.session_state[RESULT] = (label, result, images)


def show_result(phone: bool) -> None:
    """The last fine-tune: its examples and the test set read before and after, what it still gets wrong, and
    where to use the model."""
    if RESULT not in st.session_state:
        return
    label, result, images = st.session_state[RESULT]
    r = result.report
    st.subheader("Before and after")
    cols = st.columns(2)
    if r.examples_before is None:
        cols[0].metric("Your examples read right", f"{r.examples_after:.0%}", help="Before: the new classes had "
                       "no output in the model.")
    else:
        cols[0].metric("Your examples read right", f"{r.examples_after:.0%}",
                       delta=f"{(r.examples_after - r.examples_before) * 100:+.0f} points (was {r.examples_before:.0%})")
    if r.test_after is not None:
        cols[1].metric(f"Test images read right (the first {r.test_images:,})", f"{r.test_after:.1%}",
                       delta=f"{(r.test_after - r.test_before) * 100:+.1f} points (was {r.test_before:.1%})")
    else:
        cols[1].caption("Classes of your own: there is no test set to read. Draw a new example on the **Draw** page "
                        "to see how it does on one it has not seen.")
    st.caption(f"{r.examples} examples of {len(r.classes)} classes, {r.epochs} epochs ({r.steps} steps) in "
               f"{r.seconds:.1f} s · {'every layer' if r.whole else 'the last layer only'} learned · loss "
               f"{r.losses[0]:.3f} → {r.losses[-1]:.3f}. Your examples were learned from: reading them right says "
               "little about new drawings; the test images (the model's own classes) say what it forgot.")
    wrong = np.nonzero(r.after != r.labels)[0]
    if len(wrong):
        plotly_chart(image_strip([images[i] for i in wrong[:16]],
                                 [f"{r.classes[r.labels[i]]} → {r.classes[r.after[i]]}" for i in wrong[:16]],
                                 ncols=4 if phone else 8, cell=90), key="examples_wrong")
    go = st.columns(3)
    if go[0].button("Draw with it", icon="✏️", key="examples_draw", width="stretch"):
        open_model_in("pages/draw.py", label)
    if go[1].button("Inspect it", icon="🔬", key="examples_inspect", width="stretch"):
        open_model_in("pages/inspect.py", label)
    go[2].download_button("Download it", result.data, file_name=result.checkpoint.path.name,
                          mime="application/octet-stream", icon="💾", key="examples_download", width="stretch",
                          help="A .safetensors checkpoint: bring it back later with Bring a model (Inspect, Draw).")
    st.caption(f"“{label}” is in the model pickers of Draw and Inspect for you, in this browser tab.")
