"""BackgroundFit: fit in a thread, its records pulled in order; stop ends the run early and `finish` still runs."""

import threading

import pytest

from cnn_core.background import LAYER_STATS, BackgroundFit
from cnn_core.config import ConfigError
from cnn_core.runs.records import to_dict
from cnn_core.runs.status import RunStatus
from cnn_core.train import fit
from tests.test_train import tiny_config


def test_records_come_in_fits_order_without_layer_statistics(tiny_bundle):
    config = tiny_config()
    finished = threading.Event()
    run = BackgroundFit(config, finish=lambda state: (finished.set(), state.status)[1], data=tiny_bundle)
    records = [r for r in run.records(tick=0.05) if r is not None]
    assert finished.is_set() and run.result is RunStatus.FINISHED and run.join(5)
    alone = fit(config, data=tiny_bundle).history  # the same run, in this thread
    expected = [{k: v for k, v in to_dict(r).items() if k not in LAYER_STATS} for r in alone]
    assert [(r["event"], r["step"]) for r in records] == [(r["event"], r["step"]) for r in expected]
    assert records[-1]["event"] == "end" and records[-1]["status"] == "finished"
    assert not any(key in r for r in records for key in LAYER_STATS)


def test_stop_ends_the_run_at_its_next_step_and_finish_still_runs(tiny_bundle):
    config = tiny_config(epochs=500, metrics_every=1)
    run = BackgroundFit(config, finish=lambda state: state, data=tiny_bundle)
    records = run.records(tick=0.05)
    first = next(r for r in records if r is not None)
    assert first["event"] == "step"
    run.stop()
    rest = [r for r in records if r is not None]
    assert rest[-1]["event"] == "end" and rest[-1]["status"] == "stopped"
    assert run.result.status is RunStatus.STOPPED and run.result.step < run.result.total_steps


def test_closing_the_consumer_leaves_stopping_to_it(tiny_bundle):
    run = BackgroundFit(tiny_config(epochs=500, metrics_every=1), data=tiny_bundle)

    def stream():
        try:
            yield from run.records(tick=0.05)
        finally:
            run.stop()

    updates = stream()
    next(u for u in updates if u is not None)
    updates.close()  # what Gradio does to a cancelled event's generator
    assert run.join(30) and run.result.status is RunStatus.STOPPED


def test_an_error_in_fit_is_raised_by_records(tiny_bundle):
    run = BackgroundFit(tiny_config(lr=0.0), data=tiny_bundle)
    with pytest.raises(ConfigError, match="Learning rate"):
        list(run.records(tick=0.05))
    assert run.result is None
