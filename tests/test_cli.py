"""The CLI end to end on a tiny data set: list-models, train --dry-run, evaluate, resume, sweep, bad input."""

import os
import subprocess
import sys

from cnn_core.checkpoints import load_checkpoint
from cnn_core.cli import build_parser, config_from_args
from cnn_core.models import list_models
from cnn_core.runs import EndRecord, RunStatus, RunStore


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
    assert run.state is RunStatus.FINISHED and run.config.model == "mlp" and isinstance(run.history[-1], EndRecord)
    assert run.folder.checkpoint_path("epoch-1.safetensors").exists() and run.id in done.stdout


def cli_env(runs):
    return {**os.environ, "PYTHONPATH": os.getcwd(), "CNN_RUNS_DIR": str(runs)}


def test_resume_continues_a_stopped_run_to_its_end(tiny_data_dir, tmp_path):
    from cnn_core.config import TrainConfig
    from cnn_core.runs import JobManager

    runs = tmp_path / "runs"
    store = RunStore(runs)
    jobs = JobManager(store)
    run_id = jobs.submit(TrainConfig(model="mlp", epochs=3, batch_size=32, val_size=100, metrics_every=2))
    jobs.wait(run_id, timeout=120)
    # as if it had been stopped after its first epoch: its records cut there, the resume state of that epoch
    from cnn_core.checkpoints import load_resume, resume_bytes
    from cnn_core.events import Callback
    from cnn_core.train import fit, resume_point

    class CutAfterFirst(Callback):
        point = None

        def on_epoch_end(self, state):
            if state.epoch == 1:
                CutAfterFirst.point = resume_point(state)

    fit(store.read(run_id).config, [CutAfterFirst()])
    store.folder(run_id).resume_state.write_bytes(resume_bytes(CutAfterFirst.point))
    store.rewrite_history(run_id, load_resume(store.folder(run_id).resume_state.read_bytes()).history)
    store.set_status(run_id, RunStatus.STOPPED)
    done = subprocess.run([sys.executable, "-m", "cnn_core", "resume", run_id], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=cli_env(runs))
    assert done.returncode == 0, done.stderr
    run = store.read(run_id)
    assert run.state is RunStatus.FINISHED and [e.epoch for e in run.history.epochs] == [1, 2, 3]
    again = subprocess.run([sys.executable, "-m", "cnn_core", "resume", run_id], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, env=cli_env(runs))
    assert again.returncode == 2 and "only a stopped, interrupted or failed run" in again.stderr


def test_sweep_trains_a_grid_as_one_group_ranked(tiny_data_dir, tmp_path):
    runs = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "cnn_core", "sweep", "--model", "mlp", "--dry-run", "--executor",
                           "inline", "--grid", "lr=0.01,0.03", "--grid", "batch_size=32,64"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=cli_env(runs))
    assert done.returncode == 0, done.stderr
    listed = RunStore(runs).list()
    assert len(listed) == 4 and len({run.group for run in listed}) == 1
    assert {(r.config.lr, r.config.batch_size) for r in listed} == {(0.01, 32), (0.01, 64), (0.03, 32), (0.03, 64)}
    table = [line for line in done.stdout.splitlines() if "lr=" in line]
    accs = [float(line.split("%")[0].split()[-1]) for line in table]
    assert len(table) == 4 and accs == sorted(accs, reverse=True)  # ranked by test accuracy
    bad = subprocess.run([sys.executable, "-m", "cnn_core", "sweep", "--grid", "colour=red"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, env=cli_env(runs))
    assert bad.returncode == 2 and "FIELD=V1,V2" in bad.stderr and "Traceback" not in bad.stderr


def test_export_web_writes_the_page_and_names_a_wrong_layer(tmp_path):
    from cnn_core.webpage import runtime_version

    checkpoint = os.path.join(os.getcwd(), "checkpoints", "lenet5_bn-mnist.safetensors")
    done = run_cli("export", checkpoint, "--format", "web", "--layer", "fc1", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
    assert ("choose one of conv1" if runtime_version() else "make web") in done.stderr
    if runtime_version() is None:
        return
    done = run_cli("export", checkpoint, "--format", "web", "--out", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["web", done.stdout.split()[1], "MB"]
    assert (tmp_path / "lenet5_bn-mnist.html").stat().st_size > 1e6
