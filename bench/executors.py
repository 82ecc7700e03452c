"""Executors compared, in one run on this machine: submit → first curve point, training speed, and a sweep.

    .venv/bin/python bench/executors.py [--executors inline process ray] [--repeats 3] [--subset 20000] [--quick]

(1) One run on each executor: lenet5_bn on MNIST (`--subset` training images, batch 128, 1 epoch, a curve
    point every 10 steps), `--repeats` rounds interleaved (inline, process, ray, inline, …) so that a busy
    machine slows them alike. Per executor, medians of: seconds from `submit` to the run's first curve point
    in its metrics.jsonl (what the live view reads), and the epoch's images/s (fit's own clock: training
    steps only). "startup": making the executor (Ray: starting a local Ray; process: until its first worker
    has imported torch, read the data and taken a warm-up step). Then a first, small run per executor, its
    first point printed as "cold" (inline: this process reads the data; Ray: its worker imports torch). Before
    each process run the pool is let warm up, as it is in an app that has been up for a few seconds.
(2) A sweep of 8 small runs (lr × batch size × seed): serial, one after another in this process, then on each
    executor with `--parallel` runs at once (torch threads split between them). Wall time from submitting
    the group to the end of its last run.

The goals of issue 15: process reaches at least 95% of inline's images/s, and its first point comes within 2 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnn_core.config import TrainConfig  # noqa: E402
from cnn_core.runs import JobManager, RunSettings, RunStore, StepRecord, threads_for  # noqa: E402
from cnn_core.runs.executors import Executor, ProcessExecutor, make_executor  # noqa: E402
from cnn_core.runs.sweep import grid  # noqa: E402

EXECUTORS = ("inline", "process", "ray")


def speed_config(subset: int, dataset: str) -> TrainConfig:
    return TrainConfig(model="lenet5_bn", dataset=dataset, epochs=1, batch_size=128, optimizer="adam", lr=1e-3,
                       metrics_every=min(10, max(1, subset // 128)), val_size=min(1000, subset // 4),
                       train_subset=subset, device="cpu")


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def make(name: str, warm: int = 1) -> Executor:
    return ProcessExecutor(warm=warm) if name == "process" else make_executor(RunSettings.from_env(), name)


def timed_run(jobs: JobManager, config: TrainConfig, timeout: float = 900) -> tuple[float | None, float | None]:
    """Submit one run: (seconds to its first curve point, its epoch's images/s)."""
    if isinstance(jobs.executor, ProcessExecutor):
        jobs.executor.ready()
    started = time.perf_counter()
    run_id = jobs.submit(config)
    first, offset = None, 0
    while first is None and jobs.is_active(run_id):
        records, offset = jobs.store.tail(run_id, offset)
        if any(isinstance(r, StepRecord) for r in records):
            first = time.perf_counter() - started
        time.sleep(0.005)
    jobs.wait(run_id, timeout)
    run = jobs.store.read(run_id)
    if not run.state.succeeded:
        raise RuntimeError(f"{jobs.executor.name}: the run ended {run.state}: {run.status.get('error')}")
    return first, run.history.images_per_s


def sweep_wall(jobs: JobManager, configs: list[TrainConfig], timeout: float = 1800) -> float:
    started = time.perf_counter()
    ids = jobs.submit_group(configs)
    for run_id in ids:
        jobs.wait(run_id, timeout)
    failed = [run_id for run_id in ids if not jobs.store.read(run_id).state.succeeded]
    if failed:
        raise RuntimeError(f"{jobs.executor.name}: {len(failed)} sweep runs did not finish")
    return time.perf_counter() - started


def fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", nargs="+", choices=EXECUTORS, default=list(EXECUTORS))
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds of (1)")
    parser.add_argument("--subset", type=int, default=20000, help="training images of each run of (1)")
    parser.add_argument("--parallel", type=int, default=2, help="sweep runs at once on an executor")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--quick", action="store_true", help="tiny runs, 1 round: checks the script, not the speed")
    args = parser.parse_args(argv)
    subset, repeats, sweep_subset = (args.subset, args.repeats, 6000) if not args.quick else (256, 1, 128)

    print(f"bench/executors.py  {time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}  "
          f"load {os.getloadavg()[0]:.1f}" + ("  (--quick: not a measurement)" if args.quick else ""), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as tmp:
        config = speed_config(subset, args.dataset)
        managers, startup = {}, {}
        for name in args.executors:  # startup: the executor made (Ray started), the process pool's worker ready
            started = time.perf_counter()
            executor = make(name)
            if isinstance(executor, ProcessExecutor):
                executor.ready()
            startup[name] = time.perf_counter() - started
            managers[name] = JobManager(RunStore(Path(tmp) / name), executor, max_concurrent=1)
        cold = {name: timed_run(jobs, speed_config(256, args.dataset))[0] for name, jobs in managers.items()}
        firsts: dict[str, list[float]] = {name: [] for name in managers}
        speeds: dict[str, list[float]] = {name: [] for name in managers}
        for round_ in range(repeats):
            for name, jobs in managers.items():
                first, speed = timed_run(jobs, config)
                firsts[name].append(first)
                speeds[name].append(speed)
                print(f"  round {round_ + 1} {name:8s} first point {fmt(first, '.2f')} s  {fmt(speed, '.0f')} images/s",
                      flush=True)

        print(f"\n(1) one run: lenet5_bn, {subset} {args.dataset} images, batch 128, threads {threads_for(1)}, "
              f"median of {repeats}")
        print(f"{'executor':10s} {'startup':>9s} {'cold first point':>17s} {'first point':>12s} {'images/s':>10s} "
              f"{'vs inline':>10s}")
        base = median(speeds["inline"]) if "inline" in speeds else None
        for name in managers:
            speed = median(speeds[name])
            ratio = f"{speed / base:.1%}" if base and speed else "—"
            print(f"{name:10s} {startup[name]:>7.2f} s {fmt(cold[name], '.2f'):>15s} s "
                  f"{fmt(median(firsts[name]), '.2f'):>10s} s {fmt(speed, '.0f'):>10s} {ratio:>10s}")

        configs = grid(TrainConfig(model="lenet5_bn", dataset=args.dataset, epochs=1, val_size=min(500, sweep_subset),
                                   train_subset=sweep_subset, metrics_every=10, device="cpu"),
                       {"lr": [1e-3, 3e-3], "batch_size": [64, 128], "seed": [0, 1]})
        print(f"\n(2) a sweep of {len(configs)} runs (lenet5_bn, {sweep_subset} images, 1 epoch each)")
        warm_up = [dataclasses.replace(c, train_subset=128) for c in configs[:args.parallel]]
        serial = JobManager(RunStore(Path(tmp) / "sweep-serial"), make("inline"), max_concurrent=1)
        walls = {"serial": sweep_wall(serial, configs)}
        print(f"{'serial':24s} {walls['serial']:7.1f} s", flush=True)
        for name in args.executors:
            if name == "inline":
                continue
            # the process pool sized for the sweep; Ray as started for (1); both warmed by a small group first
            executor = make(name, warm=args.parallel) if name == "process" else managers[name].executor
            jobs = JobManager(RunStore(Path(tmp) / f"sweep-{name}"), executor, max_concurrent=args.parallel)
            sweep_wall(jobs, warm_up)
            if isinstance(executor, ProcessExecutor):
                executor.ready()
            walls[name] = sweep_wall(jobs, configs)
            print(f"{name + f', {args.parallel} at once':24s} {walls[name]:7.1f} s   "
                  f"{walls['serial'] / walls[name]:.2f}x serial", flush=True)
            if name == "process":
                executor.close()
        for jobs in managers.values():
            jobs.close()

    if "inline" in speeds and "process" in speeds:
        ratio = median(speeds["process"]) / median(speeds["inline"])
        first = median(firsts["process"])
        print(f"\ngoals: process images/s ≥ 95% of inline: {ratio:.1%} {'met' if ratio >= 0.95 else 'NOT met'}; "
              f"first point ≤ 2 s on process: {first:.2f} s {'met' if first <= 2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
