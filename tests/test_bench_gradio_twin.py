"""bench/gradio_twin.py --quick: one run prints the first-point time, images/s against fit alone, drawing latency."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_prints_every_figure_in_one_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNN_")}  # its own temporary folders
    done = subprocess.run([sys.executable, "bench/gradio_twin.py", "--quick", "--json", str(tmp_path / "f.json")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "QUICK" in out and "load average" in out
    for line in ("Train → first streamed curve point: ", "images/s: twin ", "fit alone ", "twin ÷ alone ",
                 "drawing through gradio_client (4 drawings): median "):
        assert line in out, line
    figures = json.loads((tmp_path / "f.json").read_text())
    assert 0 < figures["first_point_s"] < figures["run_s"] and figures["twin_images_per_s"]
    assert figures["draw_ms"]["n"] == 4 and figures["draw_ms"]["p95"] >= figures["draw_ms"]["median"] > 0
