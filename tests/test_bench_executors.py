"""bench/executors.py runs end to end (--quick, on the tiny data set) and prints every figure it promises."""

import re


def test_quick_run_prints_speeds_first_points_and_the_sweep(load_bench, tiny_data_dir, capsys):
    bench = load_bench("executors")
    assert bench.main(["--quick", "--executors", "inline", "process"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(inline|process) +[\d.]+ s +([\d.]+) s +([\d.]+) s +(\d+) +([\d.]+)%$", out, re.M)}
    assert set(rows) == {"inline", "process"}, out
    assert rows["inline"][3] == "100.0"
    assert re.search(r"^serial +[\d.]+ s$", out, re.M) and re.search(r"^process, 2 at once +[\d.]+ s +[\d.]+x serial$",
                                                                    out, re.M), out
    assert "goals: process images/s ≥ 95% of inline:" in out
