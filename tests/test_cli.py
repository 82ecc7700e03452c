"""The CLI end to end on a tiny data set: list-models, train --dry-run, evaluate, bad input."""

import os
import subprocess
import sys

from cnn_core.checkpoints import load_checkpoint
from cnn_core.cli import build_parser, config_from_args
from cnn_core.jobs import RunStore
from cnn_core.models import list_models


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=300)


def test_every_config_field_is_a_flag():
    args = build_parser().parse_args(["train", "--model", "mlp", "--no-augment", "--lr", "0.1",
                                      "--model-args", '{"hidden": 32}', "--schedule", "onecycle"])
    cfg = config_from_args(args)
    assert (cfg.model, cfg.lr, cfg.model_args, cfg.schedule, cfg.augment) == ("mlp", 0.1, {"hidden": 32}, "onecycle",
                                                                             False)


def test_dry_run_trains_and_evaluate_reads_the_checkpoint(tiny_data_dir, tmp_path):
    out = tmp_path / "run"
    done = run_cli("train", "--model", "lenet5_bn", "--dry-run", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "images/s" in done.stdout
    ckpt = load_checkpoint(out / "last.safetensors")
    assert ckpt.meta["model"] == "lenet5_bn" and ckpt.config.train_subset == 256
    ev = run_cli("evaluate", str(out / "last.safetensors"), cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    assert "test accuracy:" in ev.stdout and "/200)" in ev.stdout


def test_list_models_and_bad_input(tmp_path):
    done = run_cli("list-models", cwd=tmp_path)
    assert done.returncode == 0 and all(name in done.stdout for name in list_models())
    bad = run_cli("train", "--model", "mlp", "--epochs", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "Epochs must be at least 1" in bad.stderr and "Traceback" not in bad.stderr


def test_train_without_out_is_a_run_the_app_lists(tiny_data_dir, tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--model", "mlp", "--dry-run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd(), "CNN_RUNS_DIR": str(runs)})
    assert done.returncode == 0, done.stderr
    (run,) = RunStore(runs).list()
    assert run.state == "finished" and run.config.model == "mlp" and run.history[-1]["event"] == "end"
    assert (run.folder / "epoch-1.safetensors").exists()
