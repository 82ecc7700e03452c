"""Lessons check: train each preset as the Train page would and print its accuracy beside the seed's.

    .venv/bin/python bench/lessons.py [--only mlp] [--dataset mnist fashion-mnist] [--train-subset N]

Each preset of the Train page runs exactly as its config says (same seed, same validation split as the
app); a row prints as soon as its run ends: test accuracy, the seed tutorial's reported figure, the
difference (— where the preset has no reported figure), and the wall-clock seconds. `--dataset` runs
every preset on the data sets named instead of its own (the seeds do not all say which data set they
used: this shows which one a figure belongs to). `--train-subset` makes a fast smoke run.
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
    parser.add_argument("--dataset", nargs="+", choices=list(DATASETS), help="instead of each preset's own")
    parser.add_argument("--only", default="", help="run the presets whose name contains this text")
    parser.add_argument("--train-subset", type=int, default=0, help="train on N images only (smoke run)")
    args = parser.parse_args(argv)

    presets = [p for p in PRESETS.values() if args.only.lower() in p.name.lower()]
    if not presets:
        parser.error(f"no preset matches {args.only!r}")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}  load {os.getloadavg()[0]:.1f}", flush=True)
    print(format_row(["preset", "data set", "reported", "reached", "diff", "seconds"]), flush=True)
    for dataset in args.dataset or [None]:
        for preset in presets:
            cfg = dataclasses.replace(preset.config, dataset=dataset or preset.config.dataset,
                                      train_subset=args.train_subset)
            state = fit(cfg)
            reported = preset.reported_acc
            print(format_row([preset.name, cfg.dataset, "—" if reported is None else f"{reported:.2%}",
                              f"{state.test_acc:.2%}",
                              "—" if reported is None else f"{(state.test_acc - reported) * 100:+.2f}",
                              f"{state.elapsed:.0f}"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
