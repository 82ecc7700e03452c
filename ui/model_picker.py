"""The model picker of the Inspect and Draw pages: pretrained checkpoints and every run's latest one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from cnn_core.access import Access, Visitor
from cnn_core.checkpoints import (Checkpoint, CheckpointEntry, CheckpointError, available_checkpoints,
                                  load_checkpoint, run_label)
from cnn_core.runs import RunFolder
from ui.jobs import access, visitor

PICKED = "picked_checkpoint"  # the chosen label, kept across pages (a widget's own state is not)
WIDGET = "model_picker"
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
    st.session_state[PICKED] = run_label(run_id)
    st.session_state.pop(WIDGET, None)
    st.switch_page(page)


def pick_checkpoint(epoch_slider: bool = False) -> Checkpoint:
    """A selectbox of every checkpoint (plus, with `epoch_slider`, the epochs of a run); stops the page
    with a sentence when there is no checkpoint or the chosen one cannot be read."""
    entries = {entry.label: entry for entry in available_checkpoints(checkpoints_dir()) if _visible(entry)}
    if not entries:
        st.info(NO_CHECKPOINT)
        st.stop()
    if st.session_state.get(WIDGET) not in entries:  # first visit to this page, or the old choice is gone
        previous = st.session_state.get(PICKED)
        st.session_state[WIDGET] = previous if previous in entries else next(iter(entries))
    entry = entries[st.selectbox("Model", list(entries), key=WIDGET)]
    st.session_state[PICKED] = entry.label
    path = _epoch_slider(entry) if epoch_slider else entry.path
    try:
        ckpt = cached_checkpoint(path)
    except (CheckpointError, OSError) as e:
        st.error(f"This model cannot be loaded: {e}")
        st.stop()
    st.caption(f"`{ckpt.meta['model']}` trained on {ckpt.info.name} · {accuracy_text(ckpt)} · {path.name} · "
               f"saved {ckpt.meta.get('saved_at', '?')}")
    return ckpt


def accuracy_text(ckpt: Checkpoint) -> str:
    """Test accuracy when the run had ended; for an epoch's checkpoint, that epoch's validation accuracy."""
    if ckpt.test_acc is not None:
        return f"test accuracy {ckpt.test_acc:.2%}"
    epochs = [r for r in ckpt.history.epochs if r.val_acc is not None]
    if epochs:
        return f"validation accuracy {epochs[-1].val_acc:.2%} after epoch {epochs[-1].epoch}"
    return "no accuracy measured yet"
