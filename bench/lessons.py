"""Lessons check: train each recipe as the Train page would, with several seeds, and print what it reaches beside
what its tutorial reported.

    .venv/bin/python bench/lessons.py [--only notebook] [--seeds 0 1 2] [--dataset mnist fashion-mnist]
                                      [--train-subset N] [--json out.json]

Each recipe runs exactly as its config says (the app's validation split), once per seed; a row prints as soon as
its seeds are done: test accuracy as mean ± standard deviation over the seeds (and each seed's), the tutorial's
reported figure, the mean's difference from it (— where the recipe has none), and the mean wall-clock seconds
of one run. `--dataset` runs every recipe on the data sets named instead of its own. `--train-subset` makes a
fast smoke run. On the CPU a seed gives the same figures every time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_core.data import DATASETS  # noqa: E402
from cnn_core.presets import PRESETS  # noqa: E402
from cnn_core.train import fit  # noqa: E402

WIDTHS = (88, 8, 9, 15, 7, 8, 26)


def format_row(cells: list[str]) -> str:
    return "  ".join(c.ljust(w) if i in (0, len(WIDTHS) - 1) else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True)))


def summary(name: str, dataset: str, accuracies: list[float], seconds: list[float]) -> dict:
    """One recipe's figures over its seeds (accuracies in [0, 1])."""
    reported = PRESETS[name].reported_acc
    mean = statistics.fmean(accuracies)
    return {"recipe": name, "dataset": dataset, "reported": reported, "mean": mean,
            "sd": statistics.pstdev(accuracies) if len(accuracies) > 1 else 0.0, "seeds": accuracies,
            "diff_points": None if reported is None else (mean - reported) * 100,
            "seconds": statistics.fmean(seconds)}


def row(s: dict) -> str:
    reported = s["reported"]
    spread = f"± {s['sd'] * 100:.2f}" if len(s["seeds"]) > 1 else ""
    return format_row([s["recipe"], s["dataset"], "—" if reported is None else f"{reported:.2%}",
                       f"{s['mean']:.2%} {spread}".strip(),
                       "—" if reported is None else f"{s['diff_points']:+.2f}", f"{s['seconds']:.0f}",
                       " ".join(f"{a:.2%}" for a in s["seeds"])])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", choices=list(DATASETS), help="instead of each recipe's own")
    parser.add_argument("--only", default="", help="run the recipes whose name contains this text")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per seed (default 0 1 2)")
    parser.add_argument("--train-subset", type=int, default=0, help="train on N images only (smoke run)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)

    names = [name for name in PRESETS if args.only.lower() in name.lower()]
    if not names:
        parser.error(f"no recipe matches {args.only!r}")
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}  load {os.getloadavg()[0]:.1f}  "
          f"seeds {' '.join(map(str, args.seeds))}", flush=True)
    print(format_row(["recipe", "data set", "reported", "reached", "diff", "seconds", "each seed"]), flush=True)
    rows = []
    for dataset in args.dataset or [None]:
        for name in names:
            base = PRESETS[name].config
            accuracies, seconds = [], []
            for seed in args.seeds:
                cfg = dataclasses.replace(base, dataset=dataset or base.dataset, seed=seed,
                                          train_subset=args.train_subset)
                state = fit(cfg)
                accuracies.append(state.test_acc)
                seconds.append(state.elapsed)
            rows.append(summary(name, dataset or base.dataset, accuracies, seconds))
            print(row(rows[-1]), flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(f"{time.strftime('%Y-%m-%d %H:%M')}  load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
