"""bench/lessons.py: every lesson preset runs through `fit` and its row compares reached with reported."""

import importlib.util
import re
from pathlib import Path

from cnn_core.presets import PRESETS

SCRIPT = Path(__file__).parents[1] / "bench" / "lessons.py"


def load_script():
    spec = importlib.util.spec_from_file_location("lessons_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_compare_each_preset_with_its_tutorial(tiny_data_dir, capsys):
    assert load_script().main(["--only", "SGD 0.001", "--train-subset", "200"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "SGD 0.001" in line]
    preset = next(p for p in PRESETS.values() if "SGD 0.001" in p.name)
    assert len(rows) == 1 and preset.name in rows[0] and preset.config.dataset in rows[0]
    reported, reached, diff = re.search(r"([\d.]+)%\s+([\d.]+)%\s+([+-][\d.]+)", rows[0]).groups()
    assert float(reported) == round(preset.reported_acc * 100, 2)
    assert abs(float(reached) - float(reported) - float(diff)) < 0.011


def test_dataset_flag_runs_presets_on_other_data_sets(tiny_data_dir, capsys):
    load_script().main(["--only", "SGD 0.001", "--train-subset", "200", "--dataset", "mnist", "fashion-mnist"])
    rows = [line for line in capsys.readouterr().out.splitlines() if "SGD 0.001" in line]
    assert [row.split()[-5] for row in rows] == ["mnist", "fashion-mnist"]
