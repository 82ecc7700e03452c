"""bench/layer_stats.py: --quick prints each pair, the median slowdown and the time inside the statistics, and
leaves the loop's switch as it found it."""

import cnn_core.train as train
from cnn_core.layer_stats import LayerStats


def test_quick_run_prints_the_pairs_and_the_median(tiny_data_dir, capsys, load_bench):
    assert load_bench("layer_stats").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "QUICK" in out and "load average" in out
    assert [line.split()[:2] for line in out.splitlines() if line.strip().startswith("pair")] == [["pair", "1:"],
                                                                                                   ["pair", "2:"]]
    assert "slowdown, median of the pairs" in out and "time inside the statistics" in out
    assert train.LAYER_STATS is True and train.LayerStats is LayerStats
