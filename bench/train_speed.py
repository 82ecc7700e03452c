"""Speed benchmark: the seed tutorials' pipeline against cnn_core's engine, one table from one process.

    .venv/bin/python bench/train_speed.py [--device cpu|cuda] [--quick] [--profile]

(a) the seeds, reproduced: torchvision MNIST with per-sample Resize(32)/ToTensor/Normalize, a DataLoader
    (batch 64, shuffle), lenet5_bn, Adam 1e-3, `loss.item()` every step; test accuracy after each epoch,
    up to 3 epochs, training seconds only.
(b) cnn_core's `fit` with the same model, batch size and optimizer, one epoch.
(c) cnn_core's fastest recipe to each target test accuracy (RECIPES).
Seconds to a target count training only for (a), and everything `fit` does before the end of the epoch
that reached it for (b) and (c) (building the model and optimizer too); test evaluations are left out.
Also printed: the cost of a live-curve callback and one drawing's forward pass. `--quick` runs a
reduced version (a train subset, one epoch) that checks the table, not the speed. `--profile` prints
the top ops of a few hundred steps of (b) instead of the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_core.config import ConfigError, TrainConfig, resolve_device  # noqa: E402
from cnn_core.data import SPLIT_FILES, DataBundle, Split, data_dir, load_splits, locate, make_bundle  # noqa: E402
from cnn_core.events import Callback, TrainState  # noqa: E402
from cnn_core.models import create_model  # noqa: E402
from cnn_core.runs.records import Record, to_dict  # noqa: E402
from cnn_core.runs.status import RunStatus  # noqa: E402
from cnn_core.train import evaluate, fit  # noqa: E402

SEED_EPOCHS = 3
TARGETS = {"cpu": (0.985, 0.99), "cuda": (0.99,)}
SAME_AS_SEEDS = TrainConfig(model="lenet5_bn", batch_size=64, optimizer="adam", lr=1e-3, epochs=1, val_size=0)
RECIPES = {  # target test accuracy → the quickest way there that held for every seed we tried (docs/performance.md)
    0.985: TrainConfig(model="lenet5_bn", batch_size=256, optimizer="adam", lr=1e-2, schedule="onecycle",
                       label_smoothing=0.1, epochs=1, val_size=0),
    0.99: TrainConfig(model="lenet5_bn", batch_size=256, optimizer="adam", lr=1e-2, schedule="onecycle",
                      label_smoothing=0.1, epochs=2, val_size=0),
}
QUICK_TRAIN, QUICK_TEST = 1024, 500


@dataclass
class Row:
    """One line of the table. `epochs` holds (seconds so far, test accuracy) after each epoch."""

    label: str
    images_per_s: float
    s_per_epoch: float
    epochs: list[tuple[float, float]] = field(default_factory=list)
    target: float | None = None

    def seconds_to(self, target: float) -> float | None:
        return next((s for s, acc in self.epochs if acc >= target), None)


# ---------------------------------------------------------------- (a) the seeds


def torchvision_root(folder: Path, work: Path) -> Path:
    """A root that torchvision.datasets.MNIST reads offline: work/MNIST/raw/ linking to folder's idx files."""
    raw = work / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in (f for pair in SPLIT_FILES.values() for f in pair):
        src = locate(folder, name)
        if src is None:
            raise FileNotFoundError(f"{folder / name} is missing: run `python -m cnn_core fetch-data`.")
        if src.suffix == ".gz":
            (raw / name).write_bytes(gzip.decompress(src.read_bytes()))
        else:
            (raw / name).symlink_to(src.resolve())
    return work


def seed_pipeline(root: Path, device: str, epochs: int, stop_at: float, n_train: int = 0) -> Row:
    """The seed tutorials' training, as they wrote it; stops after the epoch that reaches `stop_at`."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [transforms.Resize(32), transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    )
    train = datasets.MNIST(str(root), train=True, download=False, transform=transform)
    test = datasets.MNIST(str(root), train=False, download=False, transform=transform)
    if n_train:
        train, test = Subset(train, range(min(n_train, len(train)))), Subset(test, range(min(QUICK_TEST, len(test))))
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=1000, shuffle=False)
    torch.manual_seed(0)
    model = create_model("lenet5_bn").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = torch.nn.CrossEntropyLoss()
    row, trained = Row("(a) seeds: torchvision + DataLoader, lenet5_bn, bs 64, Adam", 0.0, 0.0), 0.0
    for _ in range(epochs):
        model.train()
        running_loss = 0.0
        t0 = time.perf_counter()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        trained += time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(device), labels.to(device)
                correct += (model(images).argmax(1) == labels).sum().item()
        row.epochs.append((trained, correct / len(test)))
        if correct / len(test) >= stop_at:
            break
    row.s_per_epoch = trained / len(row.epochs)
    row.images_per_s = len(train) / row.s_per_epoch
    return row


# ---------------------------------------------------------------- (b), (c) cnn_core


class TargetClock(Callback):
    """Test accuracy after each epoch, timed from `start` with the evaluations left out; stops at `target`."""

    def __init__(self, start: float, target: float | None = None):
        self.start, self.target, self.left_out = start, target, 0.0
        self.epochs: list[tuple[float, float]] = []

    def on_epoch_end(self, state: TrainState) -> None:
        now = time.perf_counter()
        _, acc = evaluate(state.model, state.data.test, state.data)
        self.epochs.append((now - self.start - self.left_out, acc))
        if self.target is not None and acc >= self.target:
            state.stop.request(RunStatus.EARLY_STOPPED)
        self.left_out += time.perf_counter() - now


class LiveCurve(Callback):
    """What a live view does: every report (each `metrics_every` steps) into a list and a JSON lines file."""

    def __init__(self, path: Path):
        self.path, self.seconds = path, 0.0  # seconds: time spent in on_step
        self.points: list[Record] = []

    def on_train_begin(self, state: TrainState) -> None:
        self.file = open(self.path, "w")  # noqa: SIM115  (closed at on_train_end)

    def on_step(self, state: TrainState) -> None:
        t0 = time.perf_counter()
        self.points.append(state.last)
        self.file.write(json.dumps(to_dict(state.last)) + "\n")
        self.file.flush()
        self.seconds += time.perf_counter() - t0

    def on_train_end(self, state: TrainState) -> None:
        self.file.close()


def engine_run(label: str, cfg: TrainConfig, data: DataBundle, target: float | None = None) -> Row:
    """`fit` one recipe; images/s and s/epoch over its epochs' training time."""
    clock = TargetClock(time.perf_counter(), target)
    state = fit(cfg, [clock], data=data)
    epochs = state.history.epochs  # whole epochs: the clock stops between them
    trained = sum(len(data.train) / r.images_per_s for r in epochs)
    return Row(label, len(data.train) * len(epochs) / trained, trained / len(epochs), clock.epochs, target)


def recipe_label(cfg: TrainConfig) -> str:
    smoothing = f", smoothing {cfg.label_smoothing:g}" if cfg.label_smoothing else ""
    return f"{cfg.model}, bs {cfg.batch_size}, {cfg.optimizer} {cfg.lr:g} {cfg.schedule}{smoothing}, ≤{cfg.epochs} ep"


def subset(bundle: DataBundle, n_train: int, n_test: int) -> DataBundle:
    def first(split: Split, n: int) -> Split:
        return Split(split.images[:n], split.labels[:n])

    return DataBundle(bundle.info, first(bundle.train, n_train), bundle.val, first(bundle.test, n_test))


@dataclass
class Overhead:
    """(b) without and with a LiveCurve, run in pairs back to back: `pairs` holds without / with - 1 per pair."""

    pairs: list[float]
    inside: float  # the LiveCurve's own share of its runs' training time

    @property
    def measured(self) -> float:
        return statistics.median(self.pairs)


def callback_overhead(data: DataBundle, device: str, steps: int, repeats: int) -> Overhead:
    """`repeats` pairs of (b) runs of `steps` steps, without and with a LiveCurve, in alternating order."""
    small = subset(data, steps * SAME_AS_SEEDS.batch_size, 1000)
    cfg = dataclasses.replace(SAME_AS_SEEDS, device=device)
    pairs, inside, trained = [], 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            speed = {}
            for live in (False, True) if r % 2 == 0 else (True, False):
                curve = LiveCurve(Path(tmp) / "curve.jsonl")
                state = fit(cfg, [curve] if live else [], data=small)
                speed[live] = state.history.epochs[0].images_per_s
                if live:
                    inside += curve.seconds
                    trained += len(small.train) / speed[live]
            pairs.append(speed[False] / speed[True] - 1)
    return Overhead(pairs, inside / trained)


def forward_ms(threads: int, calls: int = 200) -> float:
    """Median milliseconds of lenet5_bn's forward pass on one (1, 1, 32, 32) drawing, eval mode."""
    model = create_model("lenet5_bn").eval()
    x = torch.randn(1, 1, 32, 32)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = []
    try:
        with torch.inference_mode():
            for i in range(calls + 20):
                t0 = time.perf_counter()
                model(x)
                if i >= 20:
                    times.append((time.perf_counter() - t0) * 1000)
    finally:
        torch.set_num_threads(before)
    return statistics.median(times)


# ---------------------------------------------------------------- the table


def _fmt_s(s: float | None, row: Row) -> str:
    if s is None:
        return f"> {row.epochs[-1][0]:.1f} (not reached)" if row.epochs else "not reached"
    epoch = next(i for i, (t, _) in enumerate(row.epochs, 1) if t == s)
    return f"{s:.1f} (epoch {epoch})"


def table(seeds: Row, engine: Row, recipes: list[Row], targets: tuple[float, ...]) -> str:
    header = ["row", "target", "images/s", "s/epoch", "s to target", "test acc", "img/s ÷ (a)", "(a) s ÷ this"]
    lines = []
    for t in targets:
        s = seeds.seconds_to(t)
        acc = next((a for _, a in seeds.epochs if a >= t), seeds.epochs[-1][1])
        lines.append([seeds.label, f"{t:.1%}", f"{seeds.images_per_s:,.0f}", f"{seeds.s_per_epoch:.2f}",
                      _fmt_s(s, seeds), f"{acc:.2%}", "1.00x", "1.00x" if s is not None else "-"])
    lines.append([engine.label, "1 epoch", f"{engine.images_per_s:,.0f}", f"{engine.s_per_epoch:.2f}", "-",
                  f"{engine.epochs[-1][1]:.2%}", f"{engine.images_per_s / seeds.images_per_s:.2f}x", "-"])
    for row in recipes:
        s, s_seeds = row.seconds_to(row.target), seeds.seconds_to(row.target)
        if s is None:
            sooner = "-"
        elif s_seeds is None:
            sooner = f"> {seeds.epochs[-1][0] / s:.2f}x"
        else:
            sooner = f"{s_seeds / s:.2f}x"
        lines.append([row.label, f"{row.target:.1%}", f"{row.images_per_s:,.0f}", f"{row.s_per_epoch:.2f}",
                      _fmt_s(s, row), f"{row.epochs[-1][1]:.2%}", f"{row.images_per_s / seeds.images_per_s:.2f}x",
                      sooner])
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, lines)])


def goals(device: str, seeds: Row, engine: Row, recipes: list[Row], overhead: Overhead, forward: float) -> str:
    """Each goal of issue 9 with what this run measured and whether that meets it."""
    lines = []

    def goal(text: str, value: str, met: bool | None) -> None:
        lines.append(f"  {text:<48} {value:>12}  {'met' if met else 'NOT met' if met is not None else '?'}")

    ratio = engine.images_per_s / seeds.images_per_s
    if device != "cuda":
        goal("(b) images/s ≥ 2x (a), batch 64", f"{ratio:.2f}x", ratio >= 2)
    for row in recipes:
        need = {0.985: 4, 0.99: 6}.get(row.target, 1) if device != "cuda" else None
        s, s_seeds = row.seconds_to(row.target), seeds.seconds_to(row.target)
        if device == "cuda":
            goal(f"(c) {row.target:.1%} in about a second", "-" if s is None else f"{s:.2f} s",
                 None if s is None else s <= 1.5)
        elif s is None:
            goal(f"(c) {row.target:.1%} ≥ {need}x sooner than (a)", "not reached", False)
        elif s_seeds is None:
            goal(f"(c) {row.target:.1%} ≥ {need}x sooner than (a)", f"> {seeds.epochs[-1][0] / s:.2f}x",
                 seeds.epochs[-1][0] / s >= need or None)
        else:
            goal(f"(c) {row.target:.1%} ≥ {need}x sooner than (a)", f"{s_seeds / s:.2f}x", s_seeds / s >= need)
    worst = max(overhead.measured, overhead.inside)
    goal("live-curve callback ≤ 5% (measured, inside)", f"{overhead.measured:+.1%}, {overhead.inside:.1%}",
         True if worst <= 0.05 else False if min(overhead.pairs) > 0.05 or overhead.inside > 0.05 else None)
    goal("one drawing's forward pass ≤ 1 ms on the CPU", f"{forward:.3f} ms", forward <= 1)
    return ("goals (issue 9; ?: this run cannot tell, a lower bound under the goal or a difference within noise):\n"
            + "\n".join(lines))


def machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    name = names[0] if names else platform.processor() or platform.machine()
    return f"{name}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def profile(device: str, steps: int = 300) -> str:
    """torch.profiler's top ops by self CPU time over `steps` steps of (b)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    data = subset(make_bundle("mnist", val_size=0, device=device), steps * SAME_AS_SEEDS.batch_size, 1000)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        fit(dataclasses.replace(SAME_AS_SEEDS, device=device), data=data)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    parser.add_argument("--quick", action="store_true",
                        help="a train subset and one epoch: checks the table, not the speed")
    parser.add_argument("--profile", action="store_true", help="print the top ops of a few hundred steps of (b)")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    if args.profile:
        print(profile(device))
        return 0
    quick = args.quick
    targets = TARGETS["cuda" if device == "cuda" else "cpu"]
    n_train = QUICK_TRAIN if quick else 0
    splits = load_splits("mnist")
    data = make_bundle("mnist", val_size=0, device=device, splits=splits)
    if quick:
        data = subset(data, n_train, QUICK_TEST)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    if device == "cuda":  # CUDA context, cuDNN autotuning and kernels load outside the timed runs
        for cfg in (SAME_AS_SEEDS, *(RECIPES[t] for t in targets)):
            fit(dataclasses.replace(cfg, device=device, epochs=1), data=subset(data, 20 * cfg.batch_size, 1000))

    with tempfile.TemporaryDirectory() as tmp:
        root = torchvision_root(data_dir() / "mnist", Path(tmp))
        seeds = seed_pipeline(root, device, 1 if quick else SEED_EPOCHS, max(targets), n_train)
    engine = engine_run("(b) cnn_core fit, same model, bs 64, Adam", dataclasses.replace(SAME_AS_SEEDS, device=device),
                        data)
    recipes = []
    for t in targets:
        cfg = dataclasses.replace(RECIPES[t], device=device, epochs=1 if quick else RECIPES[t].epochs)
        recipes.append(engine_run(f"(c) {recipe_label(cfg)}", cfg, data, t))
    steps, repeats = (10, 1) if quick else (150, 8)
    overhead = callback_overhead(data, device, steps, repeats)
    fwd = {n: forward_ms(n, 20 if quick else 200) for n in sorted({1, torch.get_num_threads()})}
    load_after = os.getloadavg()

    print(f"bench/train_speed.py  {started}  device: {device} ({machine(device)})  torch {torch.__version__}"
          f"{'  QUICK: train subset, one epoch; not a measurement' if quick else ''}")
    print(f"load average (1, 5, 15 min): before {' '.join(f'{x:.1f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.1f}' for x in load_after)}")
    print(f"train images: {len(data.train):,}  test images: {len(data.test):,}")
    print()
    print(table(seeds, engine, recipes, targets))
    print()
    print("(a) test accuracy after each epoch: "
          + ", ".join(f"{acc:.2%} at {s:.1f} s" for s, acc in seeds.epochs))
    for row in recipes:
        print(f"{row.label[:3]} {row.target:.1%}: " + ", ".join(f"{acc:.2%} at {s:.1f} s" for s, acc in row.epochs))
    print(f"callbacks: (b) with a live-curve callback (list + JSON lines every {SAME_AS_SEEDS.metrics_every} steps) "
          f"against without: {overhead.measured:+.1%} time (median of {repeats} back-to-back pairs of {steps} steps; "
          f"pairs from {min(overhead.pairs):+.1%} to {max(overhead.pairs):+.1%}); time inside the callback: "
          f"{overhead.inside:.2%} of training")
    print("one drawing's forward pass on the CPU (lenet5_bn, 1x1x32x32, eval, inference_mode): "
          + ", ".join(f"{ms:.3f} ms with {n} thread{'s' if n > 1 else ''}" for n, ms in fwd.items()) + " (median)")
    print()
    print(goals(device, seeds, engine, recipes, overhead, min(fwd.values())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
