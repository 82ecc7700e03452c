"""bench/train_speed.py: --quick prints the whole table on tiny data; the ratios are computed, not assumed."""

import json

import pytest
import torch

from cnn_core.runs.records import StepRecord, to_dict
from cnn_core.runs.status import RunStatus
from cnn_core.train import fit
from tests.test_train import tiny_config

COLUMNS = ["row", "target", "images/s", "s/epoch", "s to target", "test acc", "img/s ÷ (a)", "(a) s ÷ this"]


@pytest.fixture
def bench(load_bench):
    return load_bench("train_speed")


def test_quick_run_prints_one_table_with_every_column(tiny_data_dir, capsys, bench):
    assert bench.main(["--quick", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith("row "))
    assert all(column in lines[top] for column in COLUMNS)
    rows = lines[top + 2 : lines.index("", top)]
    assert [r[:3] for r in rows] == ["(a)", "(a)", "(b)", "(c)", "(c)"]
    assert "98.5%" in rows[0] and "99.0%" in rows[1] and "99.0%" in rows[4]
    assert "QUICK" in out and "load average" in out
    assert "callbacks:" in out and "time inside the callback" in out
    assert "goals (issue 9" in out
    assert "one drawing's forward pass" in out and " ms " in out


def test_cuda_without_a_gpu_says_so(capsys, bench):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert bench.main(["--device", "cuda"]) == 2
    assert "no GPU" in capsys.readouterr().err


def test_seed_data_root_reads_our_idx_files(tiny_data_dir, tmp_path, bench):
    from torchvision import datasets

    root = bench.torchvision_root(tiny_data_dir / "mnist", tmp_path / "tv")
    train = datasets.MNIST(str(root), train=True, download=False)
    assert len(train) == 600 and train[0][0].size == (28, 28)
    gz_root = bench.torchvision_root(tiny_data_dir / "fashion-mnist", tmp_path / "gz")  # gzipped files
    assert len(datasets.MNIST(str(gz_root), train=False, download=False)) == 200


def test_ratios_come_from_the_measurements(bench):
    Row = bench.Row
    seeds = Row("(a) seeds", 1000.0, 60.0, [(60.0, 0.980), (120.0, 0.987), (180.0, 0.989)])
    engine = Row("(b) engine", 2500.0, 24.0, [(24.0, 0.982)])
    fast = Row("(c) fast", 4000.0, 15.0, [(15.0, 0.986)], target=0.985)
    slow = Row("(c) slow", 4000.0, 15.0, [(15.0, 0.986), (30.0, 0.991)], target=0.99)
    text = bench.table(seeds, engine, [fast, slow], (0.985, 0.99))
    lines = text.splitlines()[2:]
    assert "120.0 (epoch 2)" in lines[0] and "> 180.0 (not reached)" in lines[1]
    assert "2.50x" in lines[2]  # images/s of (b) over (a)
    assert "15.0 (epoch 1)" in lines[3] and lines[3].rstrip().endswith("8.00x")  # 120 s / 15 s
    assert "30.0 (epoch 2)" in lines[4] and lines[4].rstrip().endswith("> 6.00x")  # (a) never got there


def test_live_curve_writes_every_report(tiny_bundle, tmp_path, bench):
    curve = bench.LiveCurve(tmp_path / "curve.jsonl")
    state = fit(tiny_config(epochs=1), [curve], data=tiny_bundle)
    lines = (tmp_path / "curve.jsonl").read_text().splitlines()
    assert len(lines) == len(curve.points) == state.step // 5
    assert all(isinstance(point, StepRecord) for point in curve.points)
    assert json.loads(lines[-1]) == to_dict(curve.points[-1])
    assert json.loads(lines[-1])["step"] == curve.points[-1].step == 15


def test_target_clock_stops_the_run_at_its_target(tiny_bundle, bench):
    clock = bench.TargetClock(0.0, target=0.0)  # any accuracy reaches 0%: stop after the first epoch
    state = fit(tiny_config(epochs=2), [clock], data=tiny_bundle)
    assert state.status is RunStatus.EARLY_STOPPED and len(state.history.epochs) == len(clock.epochs) == 1
