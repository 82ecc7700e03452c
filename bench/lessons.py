"""Lessons check: train each lesson preset as the Train page would and print its accuracy beside the seed's.

    .venv/bin/python bench/lessons.py [--dataset mnist fashion-mnist] [--only mlp] [--train-subset N]

Each preset runs exactly as its config says (same seed, same validation split as the app) on every data
set asked for; a row prints as soon as its run ends: test accuracy, the seed tutorial's reported figure,
the difference, and the wall-clock seconds. The seeds do not all say which data set they used, so
running both shows which one a reported figure belongs to. `--train-subset` makes a fast smoke run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_core.data import DATASETS  # noqa: E402
from cnn_core.presets import PRESETS  # noqa: E402
from cnn_core.train import fit  # noqa: E402


def format_row(cells: list[str]) -> str:
    widths = (58, 14, 9, 9, 8, 8)
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["mnist"], choices=list(DATASETS))
    parser.add_argument("--only", default="", help="run the presets whose name contains this text")
    parser.add_argument("--train-subset", type=int, default=0, help="train on N images only (smoke run)")
    args = parser.parse_args(argv)

    presets = [p for p in PRESETS.values() if p.reported_acc is not None and args.only.lower() in p.name.lower()]
    if not presets:
        parser.error(f"no lesson preset matches {args.only!r}")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}  load {os.getloadavg()[0]:.1f}", flush=True)
    print(format_row(["preset", "data set", "reported", "reached", "diff", "seconds"]), flush=True)
    for dataset in args.dataset:
        for preset in presets:
            cfg = dataclasses.replace(preset.config, dataset=dataset, train_subset=args.train_subset)
            state = fit(cfg)
            diff = (state.test_acc - preset.reported_acc) * 100
            print(format_row([preset.name, dataset, f"{preset.reported_acc:.2%}", f"{state.test_acc:.2%}",
                              f"{diff:+.2f}", f"{state.elapsed:.0f}"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
