"""The teaching instruments in a real browser: a run paused, stepped one batch by hand (its images, loss and
update size drawn by the live chart), its lr set (a mark on the curves, the next record's lr) and resumed; and the
layers view of a running run (gradient and weight norms, a chosen layer's histogram picked in the browser, the
vanishing-gradient hint), drawn from the pushed records. The test has its own server (`fresh_app`): its runs stay
out of the shared app's folder."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import expect

from cnn_core.config import TrainConfig
from cnn_core.layer_stats import HINT
from cnn_core.runs import HandStepRecord, RunStatus, RunStore, StepRecord
from streamlit_ui import ARTIFACTS, needs_page, open_page, wait_idle
from test_e2e_train import GROWN, start

pytestmark = needs_page("train.py")
LIVE = ".cnn-live[data-mode=single]"  # Playwright's CSS locators pierce the component's open shadow root


def live(page, attribute: str) -> str | None:
    return page.locator(LIVE).get_attribute(f"data-{attribute}")


def records(runs: Path, run_id: str):
    return RunStore(runs).read(run_id).history


def click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    wait_idle(page)


def test_pause_step_one_batch_set_the_lr_and_resume_in_the_browser(fresh_app, page, console_errors):
    runs = Path(fresh_app.env["CNN_RUNS_DIR"])
    open_page(page, fresh_app.url)  # as the shared app is opened: its first visit runs app.py's navigation
    open_page(page, f"{fresh_app.url}/train")
    run_id = start(page, "lenet5_bn", epochs=100, report_every=2, batch_size=32)
    page.wait_for_function(GROWN, arg=3)  # a few step records drawn: the curves have points to mark
    expect(page.locator(LIVE)).to_have_attribute("data-paused", "false")

    click(page, "Pause")
    expect(page.locator(LIVE)).to_have_attribute("data-paused", "true")  # the run applied it; the stream said so
    expect(page.locator(LIVE).get_by_text("⏸️ paused")).to_be_visible()
    drawn = int(live(page, "records"))
    time.sleep(1.5)
    assert int(live(page, "records")) == drawn, "a paused run reports nothing"

    click(page, "Step one batch")
    expect(page.locator(f"{LIVE} .hand-step")).to_be_visible()
    expect(page.locator(f"{LIVE} .hand-step canvas")).to_have_count(16)
    title = page.locator(f"{LIVE} .hand-title").inner_text()
    [hand] = [r for r in records(runs, run_id) if isinstance(r, HandStepRecord)]
    assert f"Step {hand.step}, one batch by hand" in title and "(‖Δw‖ / ‖w‖)" in title, title

    lr = page.locator(f".st-key-steer_lr_{run_id} input")
    lr.fill("0.005")
    lr.press("Enter")
    wait_idle(page)
    click(page, "Apply")
    expect(page.locator(LIVE)).to_have_attribute("data-marks", "1")  # the change, marked on the curves
    expect(page.locator(f"{LIVE} line.mark")).to_have_count(4)  # loss, accuracy, gradient and weight norms

    click(page, "Resume")
    expect(page.locator(LIVE)).to_have_attribute("data-paused", "false")
    deadline = time.monotonic() + 120
    while not [r for r in records(runs, run_id) if isinstance(r, StepRecord) and r.step > hand.step]:
        assert time.monotonic() < deadline, "the run did not train again after Resume"
        time.sleep(0.2)
    history = records(runs, run_id)
    assert [(c.action, c.lr) for c in history.controls][1:] == [("set", 0.005), ("resume", 0.005)]
    assert next(r for r in history.steps if r.step > hand.step).lr == 0.005  # applied at the next step
    expect(page.locator(f"{LIVE} .hand-step")).to_have_count(0)  # resumed: the batch by hand is no longer shown

    page.wait_for_function(GROWN, arg=int(live(page, "records")) + 8)  # the curve goes on past the mark …
    click(page, "Pause")  # … then paused again, one batch by hand: the picture in the README
    click(page, "Step one batch")
    expect(page.locator(f"{LIVE} .hand-step")).to_be_visible()
    page.set_viewport_size({"width": 1400, "height": 2300})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.get_by_test_id("stColumn").filter(has=page.locator(LIVE)).screenshot(path=str(ARTIFACTS / "live_controls.png"))
    click(page, "Cancel run")
    page.get_by_text("stopped").first.wait_for()
    assert page.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors


def vanishing_run(runs: Path) -> str:
    """A run "training" (status running, pid 1: never marked interrupted) whose records say conv1's gradients
    vanished: what the live chart draws is only what the stream pushes."""
    store = RunStore(runs)
    run_id = store.create(TrainConfig(model="lenet5_classic", epochs=3))
    for step in (10, 20, 30):
        store.append(run_id, StepRecord(
            1, step, step / 10, 2.3 - step / 100, 0.1, 0.1,
            grad_norms={"conv1": 1e-7 * step, "conv2": 1e-3, "fc1": 0.05}, weight_norms={"conv1": 2.0, "conv2": 4.0,
                                                                                        "fc1": 9.0},
            weight_hist={name: {"lo": -0.5, "hi": 0.5, "counts": [step, 1, 2, 3, 2, 1]}
                         for name in ("conv1", "conv2", "fc1")},
            vanishing=["conv1"] if step == 30 else None))
    store.set_status(run_id, RunStatus.RUNNING, pid=1, step=30, total_steps=300, epoch=1)
    return run_id


def test_the_layers_view_draws_norms_a_chosen_histogram_and_the_hint(fresh_app, page, console_errors):
    runs = Path(fresh_app.env["CNN_RUNS_DIR"])
    run_id = vanishing_run(runs)
    open_page(page, f"{fresh_app.url}/train?run={run_id}")
    expect(page.locator(f"{LIVE} .hint")).to_have_text("⚠️ " + HINT["one"].format(layers="conv1"))
    titles = page.locator(f"{LIVE} .panel .title").all_text_contents()
    assert {"gradient norm per layer (log)", "weight norm per layer (log)"} <= set(titles), titles
    assert "conv1: its weights at step 30" in titles
    histogram = page.locator(f"{LIVE} svg[data-layer]")
    expect(histogram).to_have_attribute("data-layer", "conv1")
    expect(histogram.locator("rect")).to_have_count(6)
    page.locator(f"{LIVE} .layer-pick select").select_option("fc1")  # in the browser: no rerun
    expect(histogram).to_have_attribute("data-layer", "fc1")
    assert page.locator(f"{LIVE} .layer-pick select").input_value() == "fc1"
    RunStore(runs).set_status(run_id, RunStatus.STOPPED)  # the page reruns once and shows the stopped run
    page.get_by_text("stopped").first.wait_for()
    assert not console_errors, console_errors
