"""Train: a run started in the browser draws its curves live (pushed to the page, drawn in the browser), in
two tabs at once, survives a reload, and can be cancelled."""

import json
import time
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from cnn_core.runs import RunStore
from cnn_core.plots.training import curves_figure
from streamlit_ui import choose, needs_page, open_page, screenshot, set_number, wait_idle

pytestmark = needs_page("train.py")
CURVES_WITHIN_S = 120  # a 2-epoch MLP on 1,500 synthetic images takes seconds; the bound allows a loaded machine


def curves(run_id: str) -> str:
    """The ended run's plotly chart (its key is curves_<run id>)."""
    return f".st-key-curves_{run_id} .js-plotly-plot"


LIVE = ".cnn-live[data-mode=single]"  # the live chart component while a run trains (ui/live_chart.js)
FIND_LIVE = (f"(document.querySelector('{LIVE}') || [...document.querySelectorAll('*')]"  # in its shadow root
             f".map(e => e.shadowRoot && e.shadowRoot.querySelector('{LIVE}')).find(Boolean))")
LIVE_RECORDS = f"(({FIND_LIVE})?.dataset.records ?? -1) * 1"  # the records it has drawn; -1: no live chart
GROWN = f"(n) => {{ const r = {LIVE_RECORDS}; return r > n && r; }}"  # the drawn records once more than n


def points_js(run_id: str) -> str:
    """JS for the length of each trace of the run's chart ([] while it has none)."""
    return f"(document.querySelector('{curves(run_id)}')?._fullData || []).map(t => (t.x || []).length)"


def shows_history_js(run_id: str) -> str:
    """JS, given the expected trace lengths: true once the chart draws exactly those."""
    return f"(expected) => JSON.stringify({points_js(run_id)}) === JSON.stringify(expected)"


def run_id_in_url(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("run", [None])[0]


def start(page, model: str, epochs: int, report_every: int, batch_size: int | None = None) -> str:
    """Fill the form on the left, press Train; returns the run id the URL gets."""
    choose(page, "Model", model)
    set_number(page, "Epochs", epochs)
    if batch_size is not None:
        choose(page, "Batch size", str(batch_size))
    page.get_by_test_id("stExpander").filter(has_text="More settings").locator("summary").click()
    set_number(page, "Report every N steps", report_every)
    wait_idle(page)
    before = run_id_in_url(page)
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_url(lambda url: (run := parse_qs(urlparse(url).query).get("run", [None])[0]) and run != before)
    return run_id_in_url(page)


def curve_lengths(app, run_id: str) -> list[int]:
    """The length of each trace of the curves figure made from the run's files, as the page should draw it."""
    return [len(trace.x) for trace in curves_figure(RunStore(app.runs_dir).read(run_id).history).data]


def state_on_disk(app, run_id: str) -> str:
    return json.loads((app.runs_dir / run_id / "status.json").read_text())["status"]


def run_folders(app) -> list[str]:
    return sorted(p.name for p in app.runs_dir.iterdir() if (p / "config.json").exists())


def test_train_live_curves_reload_and_cancel(app, page, console_errors):
    open_page(page, f"{app.url}/train")
    run_id = start(page, "mlp", epochs=2, report_every=2)
    assert "-mlp-" in run_id

    # The live chart gains records until the run has finished (a tiny MLP may finish between two draws) …
    seen, deadline = [], time.monotonic() + CURVES_WITHIN_S
    while state_on_disk(app, run_id) != "finished":
        assert time.monotonic() < deadline, f"run not finished after {CURVES_WITHIN_S} s; live records seen: {seen}"
        records = page.evaluate(LIVE_RECORDS)
        if not seen or records != seen[-1]:
            seen.append(records)
        page.wait_for_timeout(250)
    # … then the page reruns once and shows exactly the run's history: every trace as long as the figure
    # made from the files.
    expected = curve_lengths(app, run_id)
    page.wait_for_function(shows_history_js(run_id), arg=expected)
    print(f"\nlive records seen while training: {seen}; final curve points {sum(expected)}")
    assert sum(expected) >= 10, f"a 2-epoch run reporting every 2 steps drew only {expected}"
    page.get_by_text("finished").first.wait_for()
    wait_idle(page)
    screenshot(page, "train")

    # A reload with ?run=<id> reattaches to the same run and starts nothing new.
    open_page(page, f"{app.url}/train?run={run_id}")
    page.get_by_text(run_id).first.wait_for()
    page.wait_for_function(shows_history_js(run_id), arg=expected)
    assert run_folders(app) == [run_id], "a reload must not start another run"

    # A long run: its live chart grows while it trains, in this tab and in a second one watching the same run
    # (each draws the pushed records itself: no script reruns), then Cancel stops it.
    long_id = start(page, "lenet5_bn", epochs=100, report_every=2, batch_size=32)  # a minute or more here
    other = page.context.new_page()
    open_page(other, f"{app.url}/train?run={long_id}")
    for tab in (page, other):
        first = tab.wait_for_function(GROWN, arg=0).json_value()
        tab.wait_for_function(GROWN, arg=first)
    both = [tab.evaluate(LIVE_RECORDS) for tab in (page, other)]
    for tab, n in zip((page, other), both):
        tab.wait_for_function(GROWN, arg=n)  # still growing in both, at the same time
    assert state_on_disk(app, long_id) == "running"
    other.close()
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_text("stopped").first.wait_for()
    assert state_on_disk(app, long_id) == "stopped"
    assert run_folders(app) == sorted([run_id, long_id])
    # The sidebar may say "stopped" a tick before the live view redraws; within a few ticks the button is gone.
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0, timeout=10_000)
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors
