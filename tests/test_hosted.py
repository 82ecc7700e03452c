"""Hosted mode: limits read from the environment, configs clamped with a note per change, old runs deleted."""

import os
import time

import pytest

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.hosted import HostedLimits, apply_limits, queue_full_message
from cnn_core.runs import delete_old_runs

HOSTED = HostedLimits(enabled=True)


def test_limits_come_from_the_environment():
    assert HostedLimits.from_env({}) == HostedLimits(enabled=False)
    limits = HostedLimits.from_env({"CNN_HOSTED": "1", "CNN_MAX_EPOCHS": "5", "CNN_RUN_MAX_AGE_HOURS": "0.5",
                                    "CNN_PRIVATE_RUNS": "0"})
    assert limits.enabled and limits.max_epochs == 5 and limits.max_run_age_s == 1800 and not limits.private_runs
    assert limits.max_concurrent_runs == 1 and limits.max_train_subset == HostedLimits().max_train_subset
    for bad in ("three", "0", "-2"):
        with pytest.raises(ValueError, match="CNN_MAX_EPOCHS"):
            HostedLimits.from_env({"CNN_HOSTED": "1", "CNN_MAX_EPOCHS": bad})


def test_not_hosted_leaves_the_config_alone(monkeypatch):
    monkeypatch.delenv("CNN_HOSTED", raising=False)
    cfg = TrainConfig(epochs=50, device="cuda", batch_size=4096)
    assert apply_limits(cfg) == (cfg, [])
    assert queue_full_message(99) is None


def test_hosted_clamps_and_says_what_changed():
    cfg = TrainConfig(model="lenet5_bn", epochs=10, device="cuda", batch_size=2048, train_subset=0, lr=0.01)
    clamped, notes = apply_limits(cfg, HOSTED)
    assert (clamped.epochs, clamped.device, clamped.batch_size, clamped.train_subset) == (3, "cpu", 512, 20_000)
    assert clamped.lr == 0.01 and clamped.model == "lenet5_bn" and cfg.epochs == 10  # the original is untouched
    text = " ".join(notes)
    for words in ("GPU", "from 10 to 3", "20,000", "from 2048 to 512", "own machine"):
        assert words in text
    clamped.validate()


def test_a_config_within_the_limits_passes_unchanged_but_for_auto_device():
    cfg = TrainConfig(model="mlp", epochs=2, batch_size=64, train_subset=5000, device="auto")
    clamped, notes = apply_limits(cfg, HOSTED)
    assert notes == [] and clamped.device == "cpu" and clamped.train_subset == 5000 and clamped.epochs == 2


def test_a_too_big_model_is_refused_with_a_reason():
    wide = {"layers": [{"type": "conv", "channels": 64, "kernel": 3, "padding": 1}, {"type": "linear", "width": 64}]}
    with pytest.raises(ConfigError, match=r"parameters.*fewer channels"):
        apply_limits(TrainConfig(model="custom", model_args=wide), HOSTED)


def test_queue_full_message_counts_running_and_waiting_runs():
    limits = HostedLimits(enabled=True, max_concurrent_runs=1, max_queued_runs=2)
    assert queue_full_message(2, limits) is None
    assert "busy (3 runs" in queue_full_message(3, limits)


def test_runs_started_together_need_room_together():
    limits = HostedLimits(enabled=True, max_concurrent_runs=1, max_queued_runs=2)
    assert queue_full_message(0, limits, wanted=3) is None
    message = queue_full_message(1, limits, wanted=3)
    assert "busy (1 run training or waiting and 3 runs need room together (at most 3 at once)" in message


def make_run(root, name, age_s, now):
    folder = root / name
    folder.mkdir(parents=True)
    for file in ("config.json", "last.safetensors"):
        (folder / file).write_text("{}")
        os.utime(folder / file, (now - age_s, now - age_s))
    os.utime(folder, (now - age_s, now - age_s))
    return folder


def test_cleanup_deletes_only_old_runs(tmp_path):
    now = time.time()
    old = make_run(tmp_path, "20250101-old", 10 * 3600, now)
    older = make_run(tmp_path, "20240101-older", 20 * 3600, now)
    fresh = make_run(tmp_path, "20250102-fresh", 600, now)
    kept = make_run(tmp_path, "20240101-running", 30 * 3600, now)
    still_writing = make_run(tmp_path, "20240101-writing", 30 * 3600, now)
    (still_writing / "status.json").write_text("{}")  # a file written just now: the run is alive
    (tmp_path / "notes.txt").write_text("not a run")
    removed = delete_old_runs(tmp_path, 6 * 3600, keep={"20240101-running"}, now=now)
    assert removed == ["20240101-older", "20250101-old"]
    assert not old.exists() and not older.exists()
    assert fresh.exists() and kept.exists() and still_writing.exists() and (tmp_path / "notes.txt").exists()
    assert delete_old_runs(tmp_path / "absent", 1) == []


def test_a_base_sets_the_defaults_and_the_gpu_flag_keeps_the_device():
    base = HostedLimits(enabled=True, gpu=True, max_epochs=10)
    assert HostedLimits.from_env({}, base=base) == base  # enabled by the base, without CNN_HOSTED
    assert HostedLimits.from_env({"CNN_MAX_EPOCHS": "4"}, base=base).max_epochs == 4
    cfg = TrainConfig(epochs=20, device="auto")
    config, notes = apply_limits(cfg, base)
    assert config.device == "auto" and config.epochs == 10 and not any("GPU" in n for n in notes)
    assert apply_limits(cfg, HOSTED)[0].device == "cpu"
