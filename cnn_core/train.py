"""The training loop. It trains and fires events (cnn_core.events); callbacks record, report, checkpoint and stop.

The loop never prints and syncs with the device only every `metrics_every` steps, where it also records each
layer's gradient and weight statistics (cnn_core.layer_stats). Between two steps it applies the commands that
steer it (cnn_core.events.Controls: lr, momentum, pause, resume, one batch by hand while paused); a change of
lr or momentum by hand ends the schedule, if any: from that step on they stay where they were put.

A run can start again from the end of any whole epoch (`ResumePoint`, saved by the run's reporter): weights,
optimizer state, schedule position and every random generator come back, so on the CPU it ends exactly where an
unbroken run would (one whose lr was set by hand before that epoch's end goes on without its schedule, as it did).
What makes it fast is measured in docs/performance.md (`python bench/train_speed.py`); on a GPU it also
takes the fast paths that `fast_paths` switches on there, never on the CPU.
"""

from __future__ import annotations

import base64
import contextlib
import math
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cnn_core.callbacks import EarlyStopping
from cnn_core.config import TrainConfig, resolve_device
from cnn_core.data import DataBundle, Split, augment, batch_indices, make_bundle, normalize
from cnn_core.events import Callback, Command, Controls, Stop, TrainState
from cnn_core.layer_stats import LayerStats
from cnn_core.models import Net, create_model
from cnn_core.runs.records import ControlRecord, EndRecord, EpochRecord, HandStepRecord, History, StepRecord, finite
from cnn_core.runs.status import RunStatus

# GPU fast paths: internal switches (not TrainConfig fields), used only when a run trains on CUDA.
CUDA_CHANNELS_LAST = True  # NHWC activations, cuDNN's fastest layout for convolutions
CUDA_BF16 = True  # bf16 autocast for the forward pass and the loss
CUDA_COMPILE = False  # torch.compile the training forward: faster steps, but compiling takes tens of seconds
CUDA_EVAL_BATCH = 10_000  # whole-split evaluation batches: one launch sequence per split
LAYER_STATS = True  # per-layer gradient/weight statistics in each step record (bench/layer_stats.py: its cost)
PAUSE_POLL_S = 0.25  # while paused, how often the loop looks at its stop flag between commands
HAND_STEP_IMAGES = 16  # images of a batch stepped by hand kept in its record


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


@dataclass
class ResumePoint:
    """A run's training state after its `epoch`-th whole epoch: what `fit(resume=...)` continues from."""

    epoch: int
    step: int
    elapsed: float
    history: History  # the records up to that epoch's end
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # the optimizer's state_dict
    rng: dict[str, torch.Tensor]  # generator states by name (see `_generators`)


def resume_point(state: TrainState) -> ResumePoint:
    """The state to resume from, taken at the end of an epoch (after its records; an end record is not kept)."""
    return ResumePoint(state.epoch, state.step, state.elapsed, state.history.until_epoch(state.epoch),
                       {k: v.detach().clone() for k, v in state.model.state_dict().items()},
                       state.optimizer.state_dict(), _generator_states(state))


def _generator_states(state: TrainState) -> dict[str, torch.Tensor]:
    states = {"global": torch.get_rng_state()}  # dropout and other layers draw from it
    for name, gen in zip(("batches", "augment"), state.generators, strict=False):
        states[name] = gen.get_state()
    return states


def _restore(state: TrainState, scheduler, point: ResumePoint) -> None:
    if point.epoch > state.config.epochs or point.step != point.epoch * state.steps_per_epoch:
        raise ValueError(f"This checkpoint was saved after epoch {point.epoch} (step {point.step}) of a run that "
                         f"does not fit this configuration ({state.config.epochs} epochs of "
                         f"{state.steps_per_epoch} steps).")
    state.model.load_state_dict(point.model)
    if scheduler is not None:  # the schedule's position is its step count: replay it, as an unbroken run did
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "scheduler.step() before optimizer.step()": on purpose
            for _ in range(point.step):
                scheduler.step()
    state.optimizer.load_state_dict(point.optimizer)
    torch.set_rng_state(point.rng["global"])
    for name, gen in zip(("batches", "augment"), state.generators, strict=False):
        gen.set_state(point.rng[name])
    state.epoch, state.step, state.elapsed_before = point.epoch, point.step, point.elapsed
    state.history = History(point.history)


class _Loop:
    """One run's moving parts; `fit` builds it, `epoch` trains one epoch and records it."""

    def __init__(self, state: TrainState, forward, scheduler, paths: FastPaths, callbacks: list[Callback]):
        self.state, self.forward, self.scheduler, self.paths, self.callbacks = state, forward, scheduler, paths, callbacks
        self.stats = LayerStats(state.model) if LAYER_STATS else None
        self.by_hand = 0  # batches asked for by hand while paused, not yet trained

    def fire(self, event: str) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self.state)

    def lr(self) -> float:
        return self.state.optimizer.param_groups[0]["lr"]

    def momentum(self) -> float | None:
        """SGD's momentum or Adam's beta1; None for plain SGD."""
        group = self.state.optimizer.param_groups[0]
        if "betas" in group:
            return group["betas"][0]
        return group["momentum"] if self.state.config.optimizer == "momentum" else None

    def now(self) -> float:
        return round(self.state.elapsed, 3)

    def steer(self) -> bool:
        """Apply the commands posted since the last step; while paused, wait for the next (no CPU used) until a
        resume, a stop or a step by hand. True when the coming batch is one stepped by hand."""
        s = self.state
        for command in s.controls.take():
            self.apply(command)
        while s.paused and not self.by_hand and not s.stop.is_set():
            t = time.perf_counter()
            commands = s.controls.take(timeout=PAUSE_POLL_S)
            s.paused_s += time.perf_counter() - t
            for command in commands:
                self.apply(command)
        if s.paused and self.by_hand and not s.stop.is_set():
            self.by_hand -= 1
            return True
        return False

    def apply(self, command: Command) -> None:
        """One command, between two steps; a change is recorded (ControlRecord) and announced (on_control)."""
        s = self.state
        if command.action == "step":
            if s.paused:  # a step by hand is for a paused run only
                self.by_hand += 1
            return
        if command.action == "set":
            momentum = command.momentum if self.momentum() is not None else None  # plain SGD has none
            if command.lr is None and momentum is None:
                return
            for group in s.optimizer.param_groups:
                if command.lr is not None:
                    group["lr"] = command.lr
                if momentum is not None and "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                elif momentum is not None:
                    group["momentum"] = momentum
            self.scheduler = None  # by hand from here on: the schedule would overwrite what was set
        elif (command.action == "pause") == s.paused:
            return  # paused already, or not paused
        else:
            s.paused = command.action == "pause"
            self.by_hand = 0
        s.history.append(ControlRecord(s.epoch, s.step, self.now(), command.action, self.lr(), self.momentum(),
                                       s.paused))
        self.fire("on_control")

    @torch.no_grad()
    def record_hand_step(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor, loss: torch.Tensor,
                         before: list[torch.Tensor]) -> None:
        """The batch just trained by hand: x (B, 1, S, S) as the model saw it, y (B,), logits (B, K) before the
        update, and the parameters `before` it."""
        s = self.state
        after = list(s.model.parameters())
        moved = torch.stack([(a - b).float().square().sum() for a, b in zip(after, before)]).sum().sqrt()
        size = torch.stack([b.float().square().sum() for b in before]).sum().sqrt()
        shown = x[:HAND_STEP_IMAGES, 0].float()  # (n, S, S), normalized: back to 0-255 per image
        lo, hi = shown.amin((1, 2), keepdim=True), shown.amax((1, 2), keepdim=True)
        pixels = ((shown - lo) / (hi - lo).clamp_min(1e-6) * 255).round().to(torch.uint8).cpu().contiguous()
        predicted = logits.argmax(1)
        s.history.append(HandStepRecord(
            s.epoch, s.step, self.now(), finite(loss.item()), (predicted == y).float().mean().item(),
            finite((moved / size.clamp_min(1e-12)).item()), len(y), y[:HAND_STEP_IMAGES].tolist(),
            predicted[:HAND_STEP_IMAGES].tolist(), shown.shape[-1],
            base64.b64encode(pixels.numpy().tobytes()).decode()))
        self.fire("on_control")

    def epoch(self) -> RunStatus:
        """Train one epoch, report it; the status to go on with (RUNNING) or to end with."""
        s, cfg = self.state, self.state.config
        data, model, opt, device = s.data, s.model, s.optimizer, s.device
        t0, paused0 = time.perf_counter(), s.paused_s
        epoch_loss = torch.zeros((), device=device)
        epoch_correct = torch.zeros((), device=device, dtype=torch.long)
        run_loss, run_correct, run_seen, seen = epoch_loss.clone(), epoch_correct.clone(), 0, 0
        outcome = RunStatus.RUNNING
        for idx in batch_indices(len(data.train), cfg.batch_size, s.generators[0], device):
            by_hand = (s.paused or s.controls.pending()) and self.steer()
            if s.stop.is_set():
                outcome = s.stop.status
                break
            before = [p.detach().clone() for p in model.parameters()] if by_hand else None
            y = data.train.labels[idx]
            x = model_inputs(data.train.images[idx], data, model.input_size)
            if cfg.augment:
                x = augment(x, s.generators[-1])
            with _autocast(self.paths):
                logits = self.forward(x)
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if self.scheduler is not None:
                self.scheduler.step()
            s.step += 1
            if by_hand:
                self.record_hand_step(x, y, logits, loss, before)
            with torch.no_grad():  # running sums stay on the device; the epoch's take them in at each report
                run_loss.add_(loss.detach(), alpha=len(y))
                run_correct.add_((logits.argmax(1) == y).sum())
            run_seen += len(y)
            if s.step % cfg.metrics_every == 0:
                mean_loss = run_loss.item() / run_seen
                if not math.isfinite(mean_loss):
                    outcome = RunStatus.DIVERGED
                    break
                stats = self.stats.report() if self.stats is not None else {}
                s.history.append(StepRecord(s.epoch, s.step, self.now(), mean_loss, run_correct.item() / run_seen,
                                            self.lr(), **stats))
                self.fire("on_step")
                epoch_loss += run_loss
                epoch_correct += run_correct
                seen += run_seen
                run_loss.zero_()
                run_correct.zero_()
                run_seen = 0
        epoch_loss += run_loss
        epoch_correct += run_correct
        seen += run_seen
        if seen == 0 or (outcome is not RunStatus.RUNNING and outcome is not RunStatus.DIVERGED):
            return outcome  # stopped within the epoch: no epoch record for a partial epoch
        train_loss = epoch_loss.item() / seen  # waits for the device, so the epoch's time includes all its steps
        train_seconds = time.perf_counter() - t0 - (s.paused_s - paused0)  # paused is not training
        if not math.isfinite(train_loss):
            outcome = RunStatus.DIVERGED
        if outcome is RunStatus.DIVERGED:
            s.status = outcome  # callbacks see it at this epoch's end (nothing to resume from)
        val_loss, val_acc = (math.nan, math.nan) if outcome is RunStatus.DIVERGED else \
            evaluate(model, data.val, data, self.paths.eval_batch)
        s.history.append(EpochRecord(s.epoch, s.step, self.now(), finite(train_loss), epoch_correct.item() / seen,
                                     finite(val_loss), finite(val_acc), self.lr(),
                                     time.perf_counter() - t0 - (s.paused_s - paused0), seen / train_seconds))
        self.fire("on_epoch_end")
        if outcome is RunStatus.RUNNING and s.stop.is_set() and s.epoch < cfg.epochs:
            outcome = s.stop.status  # early stopping (or a stop that came during validation)
        return outcome


def fit(
    config: TrainConfig,
    callbacks: Iterable[Callback] = (),
    data: DataBundle | None = None,
    stop: Stop | None = None,
    model: Net | None = None,
    resume: ResumePoint | None = None,
    controls: Controls | None = None,
) -> TrainState:
    """Train `config.model` on `config.dataset` (or the given bundle), from scratch or from `resume`;
    return the final state. `stop` ends it early (at the next step), with the status the request names;
    `controls` steer it while it trains (applied between two steps)."""
    config.validate()
    device = resolve_device(config.device)
    data = data or make_bundle(config.dataset, config.val_size, device, config.train_subset,
                               normalize=config.normalize)
    torch.manual_seed(config.seed)
    model = (model or create_model(config.model, **config.model_args)).to(device)
    paths = fast_paths(device)
    if paths.channels_last:
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if paths.compile else model
    steps_per_epoch = math.ceil(len(data.train) / config.batch_size)
    opt = _optimizer(config, model.parameters(), fused=paths.fused_optimizer)
    sched = make_scheduler(config, opt, steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    # augmentation draws on the device, so that a GPU step never waits for a host-to-device copy
    generators = (gen,) if torch.device(device).type == "cpu" else (gen, torch.Generator(device).manual_seed(config.seed))
    state = TrainState(config, model, data, device, steps_per_epoch, opt, generators, stop=stop or Stop(),
                       controls=controls or Controls())
    if resume is not None:
        _restore(state, sched, resume)
        if any(r.action == "set" for r in state.history.controls):
            sched = None  # lr or momentum was set by hand before the resume point: the schedule had ended
    callbacks = list(callbacks) + ([EarlyStopping(config.patience)] if config.patience else [])
    loop = _Loop(state, forward, sched, paths, callbacks)
    loop.fire("on_train_begin")
    model.train()
    outcome = RunStatus.RUNNING
    for state.epoch in range(state.epoch + 1, config.epochs + 1):
        outcome = loop.epoch()
        if outcome is not RunStatus.RUNNING:
            break
    state.status = RunStatus.FINISHED if outcome is RunStatus.RUNNING else outcome
    test_loss, test_acc = evaluate(model, data.test, data, paths.eval_batch)
    state.history.append(EndRecord(state.epoch, state.step, loop.now(), state.status, finite(test_loss),
                                   finite(test_acc), state.elapsed))
    loop.fire("on_train_end")
    return state
