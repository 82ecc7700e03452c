"""Callbacks for `fit`: early stopping, a terminal progress bar, and checkpoint files in a folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from cnn_core.events import Callback, TrainState
from cnn_core.runs.records import EpochRecord, StepRecord
from cnn_core.runs.status import RunStatus


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better validation accuracy (read from the history, so a resumed
    run counts the epochs it trained before)."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_epoch_end(self, state: TrainState) -> None:
        if state.history.epochs_since_best >= self.patience:
            state.stop.request(RunStatus.EARLY_STOPPED)


class ProgressBar(Callback):
    """One tqdm bar per epoch with the running loss/accuracy, then an epoch summary line."""

    def __init__(self, stream: TextIO = sys.stderr):
        self.stream = stream
        self.bar = None

    def _open(self, state: TrainState) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=state.steps_per_epoch, desc=f"epoch {state.epoch}/{state.config.epochs}",
                        unit="step", file=self.stream, leave=True, dynamic_ncols=True)
        self.done = 0

    def on_step(self, state: TrainState) -> None:
        if self.bar is None:
            self._open(state)
        step_in_epoch = state.step - (state.epoch - 1) * state.steps_per_epoch
        self.bar.update(step_in_epoch - self.done)
        self.done = step_in_epoch
        last = state.last
        if isinstance(last, StepRecord):
            self.bar.set_postfix(loss=f"{last.train_loss:.4f}", acc=f"{last.train_acc:.3f}")

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is None:
            self._open(state)
        last = state.last
        self.bar.update(state.steps_per_epoch - self.done)
        if isinstance(last, EpochRecord):
            val = "—" if last.val_acc is None else f"{last.val_acc:.4f}"
            self.bar.set_postfix(loss=f"{last.train_loss:.4f}", val_acc=val, img_s=f"{last.images_per_s:.0f}")
        self.bar.close()
        self.bar = None


def is_new_best(state: TrainState) -> bool:
    """The epoch just recorded has the best validation accuracy so far."""
    last = state.last
    return isinstance(last, EpochRecord) and last.val_acc is not None and last.val_acc == state.history.best_val_acc \
        and state.history.epochs_since_best == 0


class Checkpointer(Callback):
    """Write checkpoint files into `folder` (the CLI's --out): `epoch-N` after each epoch (with keep_epochs),
    `best` on a better validation accuracy, `last` at the end."""

    def __init__(self, folder: Path, keep_epochs: bool = True):
        self.folder = Path(folder)
        self.keep_epochs = keep_epochs

    def _save(self, state: TrainState, name: str) -> None:
        from cnn_core.checkpoints import save_checkpoint

        save_checkpoint(self.folder / name, state.model, state.config, state.history, state.data.info)

    def on_epoch_end(self, state: TrainState) -> None:
        from cnn_core.runs.layout import RunFolder

        if self.keep_epochs:
            self._save(state, RunFolder.epoch_name(state.epoch))
        if is_new_best(state):
            self._save(state, "best.safetensors")

    def on_train_end(self, state: TrainState) -> None:
        self._save(state, "last.safetensors")
