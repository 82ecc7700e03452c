"""The training loop. It trains and fires events; callbacks record, report, checkpoint and stop.

Events, in order: on_train_begin, on_step (every `metrics_every` steps), on_epoch_end, on_train_end.
The loop never prints and syncs with the device only every `metrics_every` steps.
What makes it fast is measured in docs/performance.md (`python -m cnn_core.bench`); on a GPU it also
takes the fast paths that `fast_paths` switches on there, never on the CPU.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from cnn_core.config import TrainConfig, resolve_device
from cnn_core.data import DataBundle, Split, augment, batch_indices, make_bundle, normalize
from cnn_core.models import Net, create_model

FINAL_STATUSES = ("finished", "stopped", "diverged", "early_stopped")

# GPU fast paths: internal switches (not TrainConfig fields), used only when a run trains on CUDA.
CUDA_CHANNELS_LAST = True  # NHWC activations, cuDNN's fastest layout for convolutions
CUDA_BF16 = True  # bf16 autocast for the forward pass and the loss
CUDA_COMPILE = False  # torch.compile the training forward: faster steps, but compiling takes tens of seconds
CUDA_EVAL_BATCH = 10_000  # whole-split evaluation batches: one launch sequence per split


class Callback:
    """Override the events you need; each gets the live TrainState."""

    def on_train_begin(self, state: TrainState) -> None: ...
    def on_step(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


@dataclass
class TrainState:
    config: TrainConfig
    model: Net
    data: DataBundle
    device: str
    steps_per_epoch: int
    epoch: int = 0  # the epoch in progress, 1-based
    step: int = 0  # optimizer steps so far
    status: str = "running"
    history: list[dict[str, Any]] = field(default_factory=list)  # every step/epoch/end record
    best_val_acc: float | None = None
    test_acc: float | None = None
    stop_requested: bool = False
    started: float = field(default_factory=time.perf_counter)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def last(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


@dataclass(frozen=True)
class FastPaths:
    """What `fit` switches on for a device. The fused optimizer (one kernel per parameter instead of a
    dozen) pays on the CPU too; the rest is for GPUs only."""

    fused_optimizer: bool = True
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    eval_batch: int = 1000


def fast_paths(device: str) -> FastPaths:
    """The fast paths for `device`: the CUDA_* switches on a GPU, only the fused optimizer elsewhere."""
    if torch.device(device).type != "cuda":
        return FastPaths()
    return FastPaths(True, CUDA_CHANNELS_LAST, CUDA_BF16, CUDA_COMPILE, CUDA_EVAL_BATCH)


def make_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return _optimizer(cfg, params)


def _optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter], fused: bool = False) -> torch.optim.Optimizer:
    flags = {"fused": True} if fused else {}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **flags)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **flags)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **flags)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **flags)


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """A per-step scheduler (or None). 'step' divides the lr by 10 at 1/3 and 2/3 of training."""
    total = steps_per_epoch * cfg.epochs
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, [total // 3, 2 * total // 3], gamma=0.1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    return None


def model_inputs(images: torch.Tensor, data: DataBundle, size: int) -> torch.Tensor:
    """uint8 (B, 28, 28) → the model's normalized (B, 1, size, size) input."""
    return normalize(images, data.info.mean, data.info.std, size)


def _autocast(paths: FastPaths) -> contextlib.AbstractContextManager:
    return torch.autocast("cuda", dtype=torch.bfloat16) if paths.bf16 else contextlib.nullcontext()


@torch.inference_mode()
def evaluate(model: Net, split: Split, data: DataBundle, batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on `split`."""
    if len(split) == 0:
        return math.nan, math.nan
    was_training = model.training
    model.eval()
    loss = torch.zeros((), device=split.labels.device)
    correct = torch.zeros((), device=split.labels.device, dtype=torch.long)
    for start in range(0, len(split), batch_size):
        y = split.labels[start : start + batch_size]
        logits = model(model_inputs(split.images[start : start + batch_size], data, model.input_size))
        loss += F.cross_entropy(logits, y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss.item() / len(split), correct.item() / len(split)


def fit(
    config: TrainConfig,
    callbacks: Iterable[Callback] = (),
    data: DataBundle | None = None,
    stop: threading.Event | None = None,
    model: Net | None = None,
) -> TrainState:
    """Train `config.model` on `config.dataset` (or the given bundle); return the final state."""
    from cnn_core.callbacks import EarlyStopping

    config.validate()
    device = resolve_device(config.device)
    data = data or make_bundle(config.dataset, config.val_size, device, config.train_subset)
    torch.manual_seed(config.seed)
    model = (model or create_model(config.model, **config.model_args)).to(device)
    paths = fast_paths(device)
    if paths.channels_last:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if paths.compile else model
    callbacks = list(callbacks) + ([EarlyStopping(config.patience)] if config.patience else [])
    n = len(data.train)
    state = TrainState(config, model, data, device, steps_per_epoch=math.ceil(n / config.batch_size))
    opt = _optimizer(config, model.parameters(), fused=paths.fused_optimizer)
    sched = make_scheduler(config, opt, state.steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    # augmentation draws on the device, so that a GPU step never waits for a host-to-device copy
    aug_gen = gen if torch.device(device).type == "cpu" else torch.Generator(device).manual_seed(config.seed)

    def fire(event: str) -> None:
        for cb in callbacks:
            getattr(cb, event)(state)

    def record(kind: str, **values: Any) -> None:
        state.history.append({"event": kind, "epoch": state.epoch, "step": state.step,
                              "time": round(state.elapsed, 3), **values})

    fire("on_train_begin")
    model.train()
    for state.epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        epoch_loss = torch.zeros((), device=device)
        epoch_correct = torch.zeros((), device=device, dtype=torch.long)
        run_loss, run_correct, run_seen, seen = epoch_loss.clone(), epoch_correct.clone(), 0, 0
        for idx in batch_indices(n, config.batch_size, gen, device):
            if state.stop_requested or (stop is not None and stop.is_set()):
                state.status = "stopped" if state.status == "running" else state.status
                break
            y = data.train.labels[idx]
            x = model_inputs(data.train.images[idx], data, model.input_size)
            if config.augment:
                x = augment(x, aug_gen)
            with _autocast(paths):
                logits = forward(x)
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            state.step += 1
            with torch.no_grad():  # running sums stay on the device; the epoch's take them in at each report
                run_loss.add_(loss.detach(), alpha=len(y))
                run_correct.add_((logits.argmax(1) == y).sum())
            run_seen += len(y)
            if state.step % config.metrics_every == 0:
                mean_loss = run_loss.item() / run_seen
                if not math.isfinite(mean_loss):
                    state.status = "diverged"
                    break
                record("step", train_loss=mean_loss, train_acc=run_correct.item() / run_seen,
                       lr=opt.param_groups[0]["lr"])
                fire("on_step")
                epoch_loss += run_loss
                epoch_correct += run_correct
                seen += run_seen
                run_loss.zero_()
                run_correct.zero_()
                run_seen = 0
        epoch_loss += run_loss
        epoch_correct += run_correct
        seen += run_seen
        if seen == 0:
            break
        train_loss = epoch_loss.item() / seen  # waits for the device, so the epoch's time includes all its steps
        train_seconds = time.perf_counter() - t0
        if not math.isfinite(train_loss):
            state.status = "diverged"
        if state.status == "diverged":
            record("epoch", train_loss=train_loss, train_acc=epoch_correct.item() / seen, val_loss=math.nan,
                   val_acc=math.nan, lr=opt.param_groups[0]["lr"], seconds=train_seconds,
                   images_per_s=seen / train_seconds)
            fire("on_epoch_end")
            break
        val_loss, val_acc = evaluate(model, data.val, data, paths.eval_batch)
        if not math.isnan(val_acc) and (state.best_val_acc is None or val_acc > state.best_val_acc):
            state.best_val_acc = val_acc
        record("epoch", train_loss=train_loss, train_acc=epoch_correct.item() / seen, val_loss=val_loss,
               val_acc=val_acc, lr=opt.param_groups[0]["lr"], seconds=time.perf_counter() - t0,
               images_per_s=seen / train_seconds)
        fire("on_epoch_end")
        if state.status != "running":
            break
    if state.status == "running":
        state.status = "finished"
    test_loss, state.test_acc = evaluate(model, data.test, data, paths.eval_batch)
    record("end", status=state.status, test_loss=test_loss, test_acc=state.test_acc, seconds=state.elapsed)
    fire("on_train_end")
    return state
