"""TrainConfig: the one configuration shared by the sidebar form, the CLI and checkpoints."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
BATCH_SIZES = (16, 32, 64, 100, 128, 256, 512, 1024)  # what the training forms offer


class ConfigError(ValueError):
    """A configuration a user can fix; the message says how."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Field docs double as CLI help."""

    model: str = field(default="lenet5_bn", metadata={"help": "model name from the registry (see list-models)"})
    model_args: dict[str, Any] = field(default_factory=dict, metadata={"help": "JSON dict of model arguments"})
    dataset: str = field(default="mnist", metadata={"help": "mnist or fashion-mnist"})
    normalize: bool = field(default=True, metadata={
        "help": "standardize pixels with the data set's mean and std (off: pixels in [0, 1], as ToTensor() alone)"})
    epochs: int = field(default=3, metadata={"help": "passes over the training set"})
    batch_size: int = field(default=64, metadata={"help": "images per optimizer step"})
    optimizer: str = field(default="adam", metadata={"help": "sgd, momentum, adam or adamw"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate (peak rate for onecycle)"})
    momentum: float = field(default=0.9, metadata={"help": "momentum for the momentum optimizer"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 weight decay"})
    schedule: str = field(default="none", metadata={"help": "lr schedule: none, step, cosine or onecycle"})
    augment: bool = field(default=False, metadata={"help": "random shift, rotation and scale on each batch"})
    patience: int = field(default=0, metadata={"help": "early stopping after N epochs without val gain (0: off)"})
    label_smoothing: float = field(default=0.0, metadata={"help": "label smoothing in [0, 1)"})
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same metrics on CPU)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    val_size: int = field(default=5000, metadata={"help": "images held out of train for validation"})
    metrics_every: int = field(default=50, metadata={"help": "report running loss/accuracy every N steps"})
    train_subset: int = field(default=0, metadata={"help": "train on the first N images only (0: all)"})

    def validate(self) -> TrainConfig:
        """Raise ConfigError listing every problem in words a student understands; return self."""
        from cnn_core.data import DATASETS
        from cnn_core.models import list_models

        problems = []
        if self.model not in list_models():
            problems.append(f"Unknown model {self.model!r}: choose one of {', '.join(list_models())}.")
        if self.dataset not in DATASETS:
            problems.append(f"Unknown dataset {self.dataset!r}: choose one of {', '.join(DATASETS)}.")
        if self.epochs < 1:
            problems.append("Epochs must be at least 1.")
        if not 1 <= self.batch_size <= 8192:
            problems.append("Batch size must be between 1 and 8192 (64 to 512 train well).")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"Optimizer must be one of {', '.join(OPTIMIZERS)}.")
        if not 0 < self.lr <= 10:
            problems.append("Learning rate must be above 0 and at most 10 (try 1e-3 for Adam, 0.01-0.1 for SGD).")
        if not 0 <= self.momentum < 1:
            problems.append("Momentum must be in [0, 1).")
        if self.weight_decay < 0:
            problems.append("Weight decay cannot be negative.")
        if self.schedule not in SCHEDULES:
            problems.append(f"Schedule must be one of {', '.join(SCHEDULES)}.")
        if self.patience < 0:
            problems.append("Patience cannot be negative (0 turns early stopping off).")
        if not 0 <= self.label_smoothing < 1:
            problems.append("Label smoothing must be in [0, 1).")
        if self.device not in DEVICES:
            problems.append(f"Device must be one of {', '.join(DEVICES)}.")
        if self.val_size < 0:
            problems.append("Validation size cannot be negative.")
        if self.metrics_every < 1:
            problems.append("Metrics interval must be at least 1 step.")
        if self.train_subset < 0:
            problems.append("Train subset cannot be negative (0 uses all images).")
        if problems:
            raise ConfigError(" ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (a checkpoint's or a form's), ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def resolve_device(name: str) -> str:
    """'auto' → 'cuda' when available else 'cpu'; 'cuda' without a GPU → ConfigError."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("Device 'cuda' was asked for but no GPU is available here: use 'auto' or 'cpu'.")
    return name
