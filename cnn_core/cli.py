"""Command line: python -m cnn_core {train, resume, sweep, evaluate, list-models, fetch-data, export} …"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from cnn_core.config import ConfigError, TrainConfig


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with the field's default and help."""
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        helptext = f"{f.metadata.get('help', '')} (default: {json.dumps(default)})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=helptext)
        elif isinstance(default, dict):
            parser.add_argument(flag, type=json.loads, default=default, help=helptext)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=helptext)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names})
    if args.dry_run:
        cfg = dataclasses.replace(cfg, epochs=1, train_subset=256, val_size=min(cfg.val_size, 256),
                                  metrics_every=min(cfg.metrics_every, 2))
    return cfg


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).rjust(w) for x, w in zip(r, widths, strict=False)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _epochs_table(history) -> str:
    return _table(
        [[r.epoch, f"{r.train_loss:.4f}", f"{r.train_acc:.4f}", _num(r.val_loss, ".4f"), _num(r.val_acc, ".4f"),
          f"{r.lr:.2e}", f"{r.seconds:.1f}", f"{r.images_per_s:.0f}"] for r in history.epochs],
        ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds", "images/s"],
    )


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _wait(jobs, run_ids: list[str], follow: bool = False) -> None:
    """Wait for the runs to end (printing each epoch as it ends with `follow`); Ctrl-C stops them, keeping their
    checkpoints so that `resume` can continue them."""
    import time

    from cnn_core.runs import EpochRecord

    offsets = dict.fromkeys(run_ids, 0)
    try:
        while any(jobs.is_active(run_id) for run_id in run_ids):
            time.sleep(0.5)
            for run_id in run_ids if follow else ():
                records, offsets[run_id] = jobs.store.tail(run_id, offsets[run_id])
                for r in records:
                    if isinstance(r, EpochRecord):
                        print(f"{run_id}  epoch {r.epoch}  val acc {_num(r.val_acc, '.4f')}  "
                              f"{r.images_per_s:.0f} images/s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("Stopping (Ctrl-C): the runs keep their checkpoints; `resume RUN_ID` continues one.", file=sys.stderr)
        for run_id in run_ids:
            jobs.cancel(run_id)
        for run_id in run_ids:
            jobs.wait(run_id)


def _report(run) -> int:
    """The run's epochs, status and test accuracy; the exit code: 0 when it trained to its end."""
    print(_epochs_table(run.history))
    test = run.history.test_acc
    print(f"status: {run.state}   test accuracy: {_num(test, '.2%')}   total: {run.status.get('elapsed', 0.0):.1f} s")
    if run.status.get("error"):
        print(f"error: {run.status['error']}")
    print(f"run: {run.id}   checkpoint: {run.checkpoint}")
    return 0 if run.state.succeeded else 1


def _inline_jobs():
    """A job manager training in this thread, with a progress bar: the CLI's runs are the app's runs (same
    folder, listed on its Runs page)."""
    from cnn_core.callbacks import ProgressBar
    from cnn_core.runs import JobManager, RunStore
    from cnn_core.runs.executors import InlineExecutor

    return JobManager(RunStore(), InlineExecutor([ProgressBar()]))


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args).validate()
    if args.out:  # plain checkpoint files in a folder of one's choice, no run
        from cnn_core.callbacks import Checkpointer, ProgressBar
        from cnn_core.train import fit

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        print(f"Training {cfg.model} on {cfg.dataset} for {cfg.epochs} epoch(s) → {out}", file=sys.stderr)
        state = fit(cfg, [ProgressBar(), Checkpointer(out, keep_epochs=False)])
        print(_epochs_table(state.history))
        print(f"status: {state.status}   test accuracy: {_num(state.test_acc, '.2%')}   total: {state.elapsed:.1f} s")
        print(f"checkpoint: {out / 'last.safetensors'}")
        return 0 if state.status.succeeded else 1
    from cnn_core.presets import recipe_of

    jobs = _inline_jobs()
    run_id = jobs.submit(cfg, recipe=recipe_of(cfg))
    print(f"Training {cfg.model} on {cfg.dataset} for {cfg.epochs} epoch(s) → {jobs.store.folder(run_id).path}",
          file=sys.stderr)
    _wait(jobs, [run_id])
    return _report(jobs.store.read(run_id))


def cmd_resume(args: argparse.Namespace) -> int:
    jobs = _inline_jobs()
    jobs.resume(args.run_id)  # ValueError, in words, when it cannot
    print(f"Resuming {args.run_id}", file=sys.stderr)
    _wait(jobs, [args.run_id])
    return _report(jobs.store.read(args.run_id))


def cmd_sweep(args: argparse.Namespace) -> int:
    from cnn_core.runs import JobManager, RunSettings, RunStore
    from cnn_core.runs.executors import make_executor
    from cnn_core.runs.sweep import grid, label, parse_axis, varying

    if not args.grid:
        raise ConfigError("Give at least one --grid FIELD=V1,V2 (e.g. --grid lr=1e-3,3e-3 --grid batch_size=64,128).")
    axes = dict(parse_axis(text) for text in args.grid)
    configs = grid(config_from_args(args).validate(), axes)
    settings = RunSettings.from_env()
    executor = make_executor(settings, args.executor or settings.executor)
    parallel = args.parallel or (len(configs) if executor.name == "ray" else 1)
    jobs = JobManager(RunStore(settings.runs_dir), executor, max_concurrent=parallel)
    ids = jobs.submit_group(configs)
    group = jobs.store.read(ids[0]).group
    print(f"Sweep {group}: {len(ids)} runs on {executor.name}, {parallel} at a time", file=sys.stderr)
    _wait(jobs, ids, follow=True)
    jobs.close()
    runs = sorted((jobs.store.read(run_id) for run_id in ids), key=lambda r: -(r.history.test_acc or -1.0))
    fields = varying(configs) or list(axes)
    print(_table([[i + 1, label(r.config, fields), str(r.state), _num(r.history.test_acc, ".2%"),
                   _num(r.history.best_val_acc, ".2%"), f"{r.status.get('elapsed', 0.0):.1f}", r.id]
                  for i, r in enumerate(runs)],
                 ["rank", "run", "status", "test acc", "best val acc", "seconds", "id"]))
    print(f"group: {group}  (the Runs page compares it: /runs?group={group})")
    return 0 if all(r.state.succeeded for r in runs) else 1


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnn_core.checkpoints import load_checkpoint
    from cnn_core.data import make_bundle
    from cnn_core.train import evaluate

    ckpt = load_checkpoint(Path(args.checkpoint))
    data = make_bundle(ckpt.info.name, val_size=0)
    loss, acc = evaluate(ckpt.model, data.test, data)
    print(f"{ckpt.path.name}: {ckpt.meta['model']} on {ckpt.info.name}")
    print(f"test accuracy: {acc:.2%} ({round(acc * len(data.test))}/{len(data.test)})   test loss: {loss:.4f}")
    return 0


def cmd_list_models(args: argparse.Namespace) -> int:
    from cnn_core.models import MODELS, count_parameters, create_model

    rows = []
    for name, spec in MODELS.items():
        model = create_model(name)
        rows.append([name, f"{count_parameters(model):,}", f"{model.input_size}x{model.input_size}", spec.source,
                     spec.description])
    print(_table(rows, ["model", "parameters", "input", "source", "description"]))
    return 0


def cmd_fetch_data(args: argparse.Namespace) -> int:
    from cnn_core.data import DATASETS, fetch

    for name in DATASETS if args.dataset == "all" else [args.dataset]:
        fetch(name, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="CNN studio from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model and save a checkpoint")
    _add_config_flags(train)
    train.add_argument("--out", help="folder for the checkpoints (default: a new run in $CNN_RUNS_DIR, runs/)")
    train.add_argument("--dry-run", action="store_true", help="one epoch on 256 images: checks that it all runs")
    train.set_defaults(func=cmd_train)
    resume = sub.add_parser("resume", help="continue a stopped, interrupted or failed run from its last epoch")
    resume.add_argument("run_id", help="the run's id (its folder's name in $CNN_RUNS_DIR)")
    resume.set_defaults(func=cmd_resume)
    sweep = sub.add_parser("sweep", help="train a grid of configs as one group, ranked by test accuracy")
    _add_config_flags(sweep)
    sweep.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                       help="a field and its values; several --grid make every combination")
    sweep.add_argument("--executor", choices=["inline", "process", "ray"],
                       help="where the runs train (default: $CNN_EXECUTOR, else process)")
    sweep.add_argument("--parallel", type=int, default=0,
                       help="runs at once (default: all of them on ray, else 1)")
    sweep.add_argument("--dry-run", action="store_true", help="one epoch on 256 images per run")
    sweep.set_defaults(func=cmd_sweep)
    ev = sub.add_parser("evaluate", help="test accuracy of a checkpoint")
    ev.add_argument("checkpoint")
    ev.set_defaults(func=cmd_evaluate)
    sub.add_parser("list-models", help="the registered models").set_defaults(func=cmd_list_models)
    fd = sub.add_parser("fetch-data", help="download or unpack the data sets into $CNN_DATA_DIR (./data)")
    fd.add_argument("--dataset", default="all", choices=["all", "mnist", "fashion-mnist"])
    fd.set_defaults(func=cmd_fetch_data)
    from cnn_core.export import add_export_command

    add_export_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
