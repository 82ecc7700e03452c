"""CNN studio's library: data, models, training, checkpoints, inspection. No UI imports."""

__version__ = "0.1.0"
