"""bench/lessons.py: every lesson preset runs through `fit` and its row compares reached with reported."""

import re

from cnn_core.presets import PRESETS


def test_rows_compare_each_preset_with_its_tutorial(tiny_data_dir, capsys, load_bench):
    assert load_bench("lessons").main(["--only", "SGD 0.001", "--train-subset", "200"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "SGD 0.001" in line]
    preset = next(p for p in PRESETS.values() if "SGD 0.001" in p.name)
    assert len(rows) == 1 and preset.name in rows[0] and preset.config.dataset in rows[0]
    reported, reached, diff = re.search(r"([\d.]+)%\s+([\d.]+)%\s+([+-][\d.]+)", rows[0]).groups()
    assert float(reported) == round(preset.reported_acc * 100, 2)
    assert abs(float(reached) - float(reported) - float(diff)) < 0.011


def test_dataset_flag_runs_presets_on_other_data_sets(tiny_data_dir, capsys, load_bench):
    load_bench("lessons").main(["--only", "SGD 0.001", "--train-subset", "200", "--dataset", "mnist", "fashion-mnist"])
    rows = [line for line in capsys.readouterr().out.splitlines() if "SGD 0.001" in line]
    assert [row.split()[-5] for row in rows] == ["mnist", "fashion-mnist"]
