"""RunFolder: the names of a run's files, which checkpoint names it accepts, finding checkpoints; atomic writes."""

import os
import stat
from pathlib import Path

import pytest

from cnn_core.runs.layout import RUN_ID, RunFolder, epoch_of, new_run_id, write_atomic


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "20260101-120000-mlp-0a1b2c3d"
    path.mkdir()
    return RunFolder(path)


def touch(folder: RunFolder, *names: str) -> None:
    for name in names:
        (folder.path / name).write_bytes(name.encode())


def test_paths_of_the_run_files(folder):
    p = folder.path
    assert folder.id == "20260101-120000-mlp-0a1b2c3d"
    assert (folder.config, folder.meta, folder.status, folder.metrics) == (
        p / "config.json", p / "run.json", p / "status.json", p / "metrics.jsonl")
    assert (folder.resume_state, folder.log) == (p / "resume.safetensors", p / "worker.log")
    assert (folder.best, folder.last) == (p / "best.safetensors", p / "last.safetensors")


@pytest.mark.parametrize("epoch", [1, 2, 10, 123])
def test_epoch_name_and_epoch_of_agree(epoch):
    name = RunFolder.epoch_name(epoch)
    assert name == f"epoch-{epoch}.safetensors"
    assert epoch_of(Path("/runs/x") / name) == epoch
    assert epoch_of(name) == epoch  # a str path too


@pytest.mark.parametrize("name", ["best.safetensors", "last.safetensors", "resume.safetensors", "epoch-",
                                  "epoch-x.safetensors", "epoch-1.safetensors.part", "epoch-1.pt"])
def test_epoch_of_other_names_is_none(name):
    assert epoch_of(Path(name)) is None


@pytest.mark.parametrize("name", ["best.safetensors", "last.safetensors", "resume.safetensors", "epoch-1.safetensors",
                                  "epoch-12.safetensors"])
def test_checkpoint_path_of_checkpoint_names(folder, name):
    assert folder.checkpoint_path(name) == folder.path / name


@pytest.mark.parametrize("name", ["../x", "../best.safetensors", "a/b", "sub/epoch-1.safetensors",
                                  "/tmp/best.safetensors", "..", "", "config.json", "status.json", "evil.sh",
                                  "epoch-.safetensors", "epoch-1.safetensors/../../x", "epoch-1.safetensors\n",
                                  "best.safetensors.part"])
def test_checkpoint_path_refuses_other_names(folder, name):
    with pytest.raises(ValueError, match="not a checkpoint name"):
        folder.checkpoint_path(name)


def test_epoch_checkpoints_sorted_numerically(folder):
    touch(folder, "epoch-10.safetensors", "epoch-2.safetensors", "epoch-1.safetensors", "epoch-x.safetensors",
          "best.safetensors", "epoch-3.safetensors.part")
    found = folder.epoch_checkpoints()
    assert [n for n, _ in found] == [1, 2, 10]
    assert [p.name for _, p in found] == ["epoch-1.safetensors", "epoch-2.safetensors", "epoch-10.safetensors"]
    assert RunFolder(folder.path / "missing").epoch_checkpoints() == []


def test_latest_checkpoint_prefers_last_then_best_then_latest_epoch(folder):
    assert folder.latest_checkpoint() is None
    touch(folder, "resume.safetensors")
    assert folder.latest_checkpoint() is None  # the resume state is not a model to open
    touch(folder, "epoch-2.safetensors", "epoch-10.safetensors")
    assert folder.latest_checkpoint() == folder.path / "epoch-10.safetensors"
    touch(folder, "best.safetensors")
    assert folder.latest_checkpoint() == folder.best
    touch(folder, "last.safetensors")
    assert folder.latest_checkpoint() == folder.last


def test_write_atomic_replaces_whole_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "status.json"
    write_atomic(path, '{"status": "queued", "padding": "' + "x" * 100_000 + '"}')
    write_atomic(path, '{"status": "running"}')
    assert path.read_text() == '{"status": "running"}'
    write_atomic(path, b"\x00\xffbytes")
    assert path.read_bytes() == b"\x00\xffbytes"
    assert os.listdir(tmp_path) == ["status.json"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the other processes that show runs


def test_write_atomic_that_fails_keeps_the_old_file(tmp_path):
    path = tmp_path / "status.json"
    write_atomic(path, "old")
    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # not str or bytes: the write fails after the temp file exists
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["status.json"]


def test_new_run_id_is_a_run_id():
    run_id = new_run_id("lenet5_bn", "20261203-211613")
    assert RUN_ID.fullmatch(run_id) and run_id.startswith("20261203-211613-lenet5_bn-")
    assert new_run_id("mlp", "t") != new_run_id("mlp", "t")
