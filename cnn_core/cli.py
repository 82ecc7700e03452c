"""Command line: python -m cnn_core {train, evaluate, list-models, fetch-data, export} …"""

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


def cmd_train(args: argparse.Namespace) -> int:
    from cnn_core.callbacks import Checkpointer, ProgressBar
    from cnn_core.jobs import RunRecorder, RunStore
    from cnn_core.train import fit

    cfg = config_from_args(args).validate()
    callbacks = [ProgressBar()]
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    else:  # a run like the app's: listed on its Runs page, inspectable epoch by epoch
        store = RunStore()
        run_id = store.create(cfg)
        out = store.folder(run_id)
        callbacks.append(RunRecorder(store, run_id))
    print(f"Training {cfg.model} on {cfg.dataset} for {cfg.epochs} epoch(s) → {out}", file=sys.stderr)
    state = fit(cfg, [*callbacks, Checkpointer(out, keep_epochs=not args.out)])
    epochs = [r for r in state.history if r["event"] == "epoch"]
    print(_table(
        [[r["epoch"], f"{r['train_loss']:.4f}", f"{r['train_acc']:.4f}", f"{r['val_loss']:.4f}",
          f"{r['val_acc']:.4f}", f"{r['lr']:.2e}", f"{r['seconds']:.1f}", f"{r['images_per_s']:.0f}"] for r in epochs],
        ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds", "images/s"],
    ))
    print(f"status: {state.status}   test accuracy: {state.test_acc:.2%}   total: {state.elapsed:.1f} s")
    print(f"checkpoint: {out / 'last.safetensors'}")
    return 0 if state.status in ("finished", "early_stopped") else 1


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
