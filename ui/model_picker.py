"""The model picker of the Inspect and Draw pages: pretrained checkpoints, the models this session brought or made
(an upload, a model fine-tuned on one's own examples: this session's only), and every run's latest checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from cnn_core.access import Access, Visitor
from cnn_core.checkpoints import (MAX_UPLOAD_BYTES, Checkpoint, CheckpointEntry, CheckpointError,
                                  available_checkpoints, check_upload, load_checkpoint, load_upload, run_label)
from cnn_core.runs import RunFolder
from ui.jobs import access, visitor

PICKED = "picked_checkpoint"  # the chosen label, kept across pages (a widget's own state is not)
WIDGET = "model_picker"
SESSION = "session_models"  # st.session_state: {label: Checkpoint} this session brought or made, shown to it only
MAX_SESSION_MODELS = 3  # the oldest goes when a fourth comes
UPLOAD, UPLOAD_ERROR = "model_upload", "model_upload_error"
NO_CHECKPOINT = ("There is no trained model yet. Train one on the **Train** page (it appears here as soon as "
                 "its first epoch is saved), or start the app with `make run`, which ships pretrained models "
                 "in `checkpoints/`.")


def checkpoints_dir() -> Path:
    """The pretrained checkpoints: $CNN_CHECKPOINTS_DIR, default ./checkpoints."""
    return Path(os.environ.get("CNN_CHECKPOINTS_DIR", "checkpoints"))


@st.cache_resource(max_entries=16, show_spinner="Loading the model …")
def _load(path: str, mtime_ns: int) -> Checkpoint:
    return load_checkpoint(Path(path))


def cached_checkpoint(path: Path) -> Checkpoint:
    """Load once per file version: a run's last.safetensors rewritten by the worker is read again."""
    return _load(str(Path(path).resolve()), Path(path).stat().st_mtime_ns)


def _epoch_slider(entry: CheckpointEntry) -> Path:
    """For a run that kept per-epoch checkpoints, a slider over its epochs (default: the latest)."""
    epochs = dict(RunFolder(entry.path.parent).epoch_checkpoints())
    if entry.kind != "run" or len(epochs) < 2:
        return entry.path
    epoch = st.select_slider("Epoch: watch the kernels form", options=list(epochs), value=max(epochs))
    return entry.path if epoch == max(epochs) else epochs[epoch]  # the latest: the run's own (with test accuracy)


def _visible(entry: CheckpointEntry) -> bool:
    """Pretrained models always; a run's only when this visitor may use it (hosted demo: their own)."""
    rule = access()
    return entry.kind != "run" or not rule.private or may_use(entry, rule, visitor())


def may_use(entry: CheckpointEntry, rule: Access, who: Visitor) -> bool:
    """Whether `who` may load this checkpoint under `rule`: a pretrained one always; a run's when they may act
    on the run (locally anyone; hosted its owner; in a class its owner and the teacher)."""
    if entry.kind != "run" or not rule.private:
        return True
    try:
        status = json.loads((entry.path.parent / "status.json").read_text())
    except (OSError, ValueError):
        return False
    return rule.can_act(who, status)


def open_run_in(page: str, run_id: str) -> None:
    """Go to the Inspect or Draw page with this run's model already picked."""
    open_model_in(page, run_label(run_id))


def open_model_in(page: str, label: str) -> None:
    """Go to the Inspect or Draw page with the picker's entry `label` already picked."""
    st.session_state[PICKED] = label
    st.session_state.pop(WIDGET, None)
    st.switch_page(page)


def session_models() -> dict[str, Checkpoint]:
    """The models this session brought (uploads) or made (fine-tuned), by label: nobody else's pickers show them."""
    return st.session_state.setdefault(SESSION, {})


def add_session_model(label: str, ckpt: Checkpoint, pick: bool = True) -> None:
    """Offer `ckpt` in this session's pickers under `label` (the oldest such model goes past MAX_SESSION_MODELS);
    with `pick`, picked: then call it before the picker is drawn (a callback) or on another page."""
    models = session_models()
    models.pop(label, None)
    models[label] = ckpt
    while len(models) > MAX_SESSION_MODELS:
        models.pop(next(iter(models)))
    if pick:
        st.session_state[PICKED] = label
        st.session_state.pop(WIDGET, None)


def _entries() -> dict[str, CheckpointEntry]:
    """Pretrained checkpoints, this session's own models, then the runs this visitor may use."""
    files = [entry for entry in available_checkpoints(checkpoints_dir()) if _visible(entry)]
    mine = [CheckpointEntry(label, ckpt.path, "session") for label, ckpt in session_models().items()]
    ordered = [e for e in files if e.kind == "pretrained"] + mine + [e for e in files if e.kind != "pretrained"]
    return {entry.label: entry for entry in ordered}


def pick_checkpoint(epoch_slider: bool = False) -> Checkpoint:
    """A selectbox of every checkpoint (plus, with `epoch_slider`, the epochs of a run); stops the page
    with a sentence when there is no checkpoint or the chosen one cannot be read."""
    entries = _entries()
    if not entries:
        st.info(NO_CHECKPOINT)
        st.stop()
    if st.session_state.get(WIDGET) not in entries:  # first visit to this page, or the old choice is gone
        previous = st.session_state.get(PICKED)
        st.session_state[WIDGET] = previous if previous in entries else next(iter(entries))
    entry = entries[st.selectbox("Model", list(entries), key=WIDGET)]
    st.session_state[PICKED] = entry.label
    if entry.kind == "session":
        ckpt = session_models()[entry.label]
        st.caption(f"`{ckpt.meta['model']}` trained on {ckpt.info.name} · {accuracy_text(ckpt)} · {ckpt.path.name} · "
                   "yours, in this browser tab only")
        return ckpt
    path = _epoch_slider(entry) if epoch_slider else entry.path
    try:
        ckpt = cached_checkpoint(path)
    except (CheckpointError, OSError) as e:
        st.error(f"This model cannot be loaded: {e}")
        st.stop()
    st.caption(f"`{ckpt.meta['model']}` trained on {ckpt.info.name} · {accuracy_text(ckpt)} · {path.name} · "
               f"saved {ckpt.meta.get('saved_at', '?')}")
    return ckpt


def picked_is_yours() -> bool:
    """Whether the picked model is one this session brought or made (it has no file on this server)."""
    return st.session_state.get(PICKED) in session_models()


def bring_a_model() -> None:
    """An uploader for a checkpoint CNN studio saved elsewhere: read as safetensors only (nothing in it is run),
    at most MAX_UPLOAD_BYTES, its architecture checked against its weights; offered in this session's pickers, or
    refused with one sentence and nothing loaded."""
    with st.expander("Bring a model", icon="📦"):
        st.file_uploader(f"A checkpoint saved by CNN studio (.safetensors, at most {MAX_UPLOAD_BYTES // 2**20} MB)",
                         type=["safetensors"], max_upload_size=MAX_UPLOAD_BYTES // 2**20, key=UPLOAD,
                         on_change=_uploaded)
        if st.session_state.get(UPLOAD_ERROR):
            st.error(st.session_state[UPLOAD_ERROR], icon="🚫")
        st.caption("A run's best.safetensors or last.safetensors, or a model downloaded from this app. It is read, "
                   "never run, and offered in the model pickers of Inspect and Draw to you alone, in this browser "
                   "tab.")


def _uploaded() -> None:
    """The uploader's callback: load the file, or keep the sentence that says why not."""
    file = st.session_state.get(UPLOAD)
    st.session_state.pop(UPLOAD_ERROR, None)
    if file is None:
        return
    try:
        check_upload(file.name, file.size)  # refused before its bytes are copied
        ckpt = load_upload(file.getvalue(), file.name)
    except CheckpointError as e:
        st.session_state[UPLOAD_ERROR] = str(e)
        return
    add_session_model(f"uploaded · {Path(file.name).stem}", ckpt)


def accuracy_text(ckpt: Checkpoint) -> str:
    """Test accuracy when the run had ended; for an epoch's checkpoint, that epoch's validation accuracy; for a
    fine-tuned model, how it read its examples (and the test images it was checked on)."""
    tuned = ckpt.meta.get("fine_tuned")
    if isinstance(tuned, dict) and isinstance(tuned.get("examples_after"), (int, float)):
        test = tuned.get("test_after")
        return (f"fine-tuned on {tuned.get('examples')} examples, {tuned['examples_after']:.0%} of them read right"
                + (f", {test:.1%} of the first {tuned.get('test_images'):,} test images" if isinstance(test, float)
                   else ""))
    if ckpt.test_acc is not None:
        return f"test accuracy {ckpt.test_acc:.2%}"
    epochs = [r for r in ckpt.history.epochs if r.val_acc is not None]
    if epochs:
        return f"validation accuracy {epochs[-1].val_acc:.2%} after epoch {epochs[-1].epoch}"
    return "no accuracy measured yet"
