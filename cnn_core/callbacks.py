"""Callbacks for `fit`: early stopping, a terminal progress bar, and checkpointing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from cnn_core.train import Callback, TrainState


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better validation accuracy."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best: float | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, state: TrainState) -> None:
        acc = state.last.get("val_acc")
        if acc is None or acc != acc:  # no validation set (NaN): nothing to watch
            return
        if self.best is None or acc > self.best:
            self.best, self.bad_epochs = acc, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            state.status = "early_stopped"


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
        self.bar.set_postfix(loss=f"{state.last['train_loss']:.4f}", acc=f"{state.last['train_acc']:.3f}")

    def on_epoch_end(self, state: TrainState) -> None:
        if self.bar is None:
            self._open(state)
        m = state.last
        self.bar.update(state.steps_per_epoch - self.done)
        self.bar.set_postfix(loss=f"{m['train_loss']:.4f}", val_acc=f"{m['val_acc']:.4f}",
                             img_s=f"{m['images_per_s']:.0f}")
        self.bar.close()
        self.bar = None


class Checkpointer(Callback):
    """Save `epoch-N.safetensors` after each epoch, `best.safetensors` on a better val accuracy, `last` at the end."""

    def __init__(self, folder: Path, keep_epochs: bool = True):
        self.folder = Path(folder)
        self.keep_epochs = keep_epochs
        self.best: float | None = None

    def _save(self, state: TrainState, name: str) -> None:
        from cnn_core.checkpoints import save_checkpoint

        save_checkpoint(self.folder / name, state.model, state.config, state.history, state.data.info)

    def on_epoch_end(self, state: TrainState) -> None:
        if self.keep_epochs:
            self._save(state, f"epoch-{state.epoch}.safetensors")
        acc = state.last.get("val_acc")
        if acc == acc and acc is not None and (self.best is None or acc > self.best):
            self.best = acc
            self._save(state, "best.safetensors")

    def on_train_end(self, state: TrainState) -> None:
        self._save(state, "last.safetensors")
