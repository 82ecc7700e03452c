"""What the per-layer gradient and weight statistics cost the training loop (cnn_core.layer_stats).

    .venv/bin/python bench/layer_stats.py [--pairs 6] [--steps 150] [--metrics-every 50] [--device cpu]
    .venv/bin/python bench/layer_stats.py --quick        # tiny: checks the output, not the speed

The (b) run of bench/train_speed.py (lenet5_bn, batch 64, Adam, MNIST) for `--steps` steps, without and with
the statistics (cnn_core.train.LAYER_STATS), in back-to-back pairs of alternating order; for each run the
epoch's images/s. Prints each pair, the median of the pairs' slowdowns, and the time spent inside the
statistics (measured around LayerStats.report) as a share of the training time; and the load average, which on
a shared machine moves the figures more than the statistics do (a pair's two runs share the same moment).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cnn_core.train as train  # noqa: E402 - after the path above
from cnn_core.config import TrainConfig, resolve_device  # noqa: E402
from cnn_core.data import DataBundle, Split, load_splits, make_bundle  # noqa: E402
from cnn_core.layer_stats import LayerStats  # noqa: E402

SAME_AS_B = TrainConfig(model="lenet5_bn", batch_size=64, optimizer="adam", lr=1e-3, epochs=1, val_size=0)


def first(bundle: DataBundle, n_train: int) -> DataBundle:
    return DataBundle(bundle.info, Split(bundle.train.images[:n_train], bundle.train.labels[:n_train]), bundle.val,
                      Split(bundle.test.images[:500], bundle.test.labels[:500]))


class Timed(LayerStats):
    """LayerStats that adds the seconds of each report to `Timed.seconds`."""

    seconds = 0.0

    def report(self):
        t = time.perf_counter()
        try:
            return super().report()
        finally:
            Timed.seconds += time.perf_counter() - t


def speed(config: TrainConfig, data: DataBundle, stats: bool) -> float:
    """images/s of one epoch, with or without the statistics."""
    train.LAYER_STATS = stats
    state = train.fit(config, data=data)
    return state.history.epochs[0].images_per_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="back-to-back pairs of runs (default 6)")
    parser.add_argument("--steps", type=int, default=150, help="steps per run (default 150)")
    parser.add_argument("--metrics-every", type=int, default=50, help="the report interval (default 50, the app's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--quick", action="store_true", help="2 pairs of 10 steps: checks the output only")
    args = parser.parse_args(argv)
    pairs, steps = (2, 10) if args.quick else (args.pairs, args.steps)
    device = resolve_device(args.device)
    config = dataclasses.replace(SAME_AS_B, device=device, metrics_every=args.metrics_every)
    bundle = make_bundle("mnist", val_size=0, device=device, splits=load_splits("mnist"))
    data = first(bundle, steps * config.batch_size)
    train.LayerStats = Timed
    load_before, started = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M")
    speed(config, data, True)  # warm-up: first-call costs out of the pairs
    rows, inside, trained = [], 0.0, 0.0
    try:
        for i in range(pairs):
            result = {}
            for stats in (False, True) if i % 2 == 0 else (True, False):
                before = Timed.seconds
                result[stats] = speed(config, data, stats)
                if stats:
                    inside += Timed.seconds - before
                    trained += len(data.train) / result[stats]
            rows.append((result[False], result[True]))
    finally:
        train.LAYER_STATS, train.LayerStats = True, LayerStats
    load_after = os.getloadavg()
    slowdowns = [off / on - 1 for off, on in rows]
    print(f"bench/layer_stats.py  {started}  device {device}  torch threads "
          f"{train.torch.get_num_threads()}{'  QUICK: not a measurement' if args.quick else ''}")
    print(f"lenet5_bn, batch 64, Adam, {len(data.train):,} images ({steps} steps) per run, a report every "
          f"{args.metrics_every} steps; {pairs} pairs, alternating order")
    print(f"load average (1, 5, 15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}")
    for i, (off, on) in enumerate(rows, 1):
        print(f"  pair {i}: without {off:8,.0f} images/s   with {on:8,.0f} images/s   {off / on - 1:+.1%} time")
    print(f"slowdown, median of the pairs: {statistics.median(slowdowns):+.1%} time (pairs from {min(slowdowns):+.1%} "
          f"to {max(slowdowns):+.1%}); time inside the statistics: {inside / trained:.2%} of training")
    return 0


if __name__ == "__main__":
    sys.exit(main())
