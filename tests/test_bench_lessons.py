"""bench/lessons.py: every recipe runs through `fit` once per seed, and its row compares the mean reached with
the tutorial's reported figure."""

import json
import re

from cnn_core.presets import PRESETS

RECIPE = "Course notebook: MLP — SGD 0.001, 3 epochs"


def test_rows_compare_each_recipe_with_its_tutorial_over_seeds(tiny_data_dir, capsys, load_bench, tmp_path):
    out = tmp_path / "lessons.json"
    assert load_bench("lessons").main(["--only", "SGD 0.001", "--train-subset", "200", "--seeds", "0", "1",
                                       "--json", str(out)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if RECIPE in line]
    assert len(rows) == 1 and PRESETS[RECIPE].config.dataset in rows[0]
    reported, mean, sd, diff, *_, first, second = re.search(
        r"([\d.]+)%\s+([\d.]+)% ± ([\d.]+)\s+([+-][\d.]+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)%", rows[0]).groups()
    assert float(reported) == round(PRESETS[RECIPE].reported_acc * 100, 2)
    assert abs(float(mean) - float(reported) - float(diff)) < 0.011
    assert abs((float(first) + float(second)) / 2 - float(mean)) < 0.011
    assert abs(abs(float(first) - float(second)) / 2 - float(sd)) < 0.011  # two seeds: sd is half the gap
    [saved] = json.loads(out.read_text())
    assert saved["recipe"] == RECIPE and len(saved["seeds"]) == 2


def test_dataset_flag_runs_recipes_on_other_data_sets(tiny_data_dir, capsys, load_bench):
    load_bench("lessons").main(["--only", "SGD 0.001", "--train-subset", "200", "--seeds", "0", "--dataset", "mnist",
                                "fashion-mnist"])
    rows = [line for line in capsys.readouterr().out.splitlines() if RECIPE in line]
    assert [re.search(r"(fashion-mnist|mnist)", row[len(RECIPE):]).group(1) for row in rows] == ["mnist",
                                                                                                 "fashion-mnist"]
