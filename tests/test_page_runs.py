"""AppTest of the runs redesign in the app: an unreadable run folder breaks no page, a sweep started on the Train
page is compared and ranked on the Runs page, and a run whose worker process is killed reads failed with the
reason while the app answers on, then resumes to its end from the page."""

import json
import os
import signal
import time

from cnn_core.config import TrainConfig
from cnn_core.runs import RunStatus, RunStore
from tests.conftest import open_page


def wait_for(predicate, timeout=120.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def texts(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption", "warning", "info", "error") for e in at.get(kind))


def test_an_unreadable_run_folder_is_listed_and_breaks_no_page(runs_root):
    store = RunStore(runs_root)
    good = store.create(TrainConfig(model="mlp"))
    store.set_status(good, RunStatus.FINISHED)
    broken = store.create(TrainConfig(model="mlp"))
    store.folder(broken).status.write_text("")  # what a disk that filled up mid-write leaves
    (runs_root / "20200101-000000-mlp-deadbeef").mkdir()  # a folder with nothing in it
    at = open_page("pages/runs.py")
    assert not at.exception, at.exception
    assert f"Run folder `{broken}` cannot be read" in texts(at)
    rows = at.dataframe[-1].value
    statuses = dict(zip(rows["run"], rows["status"]))
    assert statuses[good] == RunStatus.FINISHED and statuses[broken] == RunStatus.UNREADABLE
    assert statuses["20200101-000000-mlp-deadbeef"] == RunStatus.UNREADABLE
    for page in ("pages/train.py", "pages/inspect.py", "pages/draw.py", "pages/home.py"):
        assert not open_page(page).exception, page  # the sidebar and the model pickers list runs too
    at = open_page("pages/train.py")
    at.query_params["run"] = broken
    at.run()
    assert not at.exception and "cannot be read" in texts(at)


def test_a_sweep_from_the_train_page_is_compared_and_ranked(runs_root, monkeypatch):
    monkeypatch.setenv("CNN_EXECUTOR", "inline")
    monkeypatch.setenv("CNN_MAX_CONCURRENT", "2")
    at = open_page("pages/train.py")
    at.selectbox(key="cfg_model").set_value("mlp")
    at.number_input(key="cfg_epochs").set_value(1)
    at.number_input(key="cfg_val_size").set_value(100)
    at.run()
    at.text_input(key="sweep_lr").set_value("0.01, 0.05").run()
    at.multiselect(key="sweep_batch").set_value([32, 64]).run()
    assert "**4 runs**" in texts(at)
    next(b for b in at.button if b.key == "sweep_start").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "📈 Runs"
    store = RunStore(runs_root)
    runs = store.list()
    assert len(runs) == 4 and len({run.group for run in runs}) == 1
    wait_for(lambda: all(run.state.is_final for run in store.list()), what="the sweep")
    at.switch_page("pages/runs.py").run()
    assert not at.exception, at.exception
    assert f"Sweep `{runs[0].group}`" in [h.value for h in at.subheader]
    ranked = at.dataframe[0].value
    assert sorted(ranked["run"]) == sorted(f"lr={lr} · batch_size={b}" for lr in ("0.01", "0.05") for b in (32, 64))
    accuracies = list(ranked["test acc"])
    assert accuracies == sorted(accuracies, reverse=True) and list(ranked["rank"]) == [1, 2, 3, 4]
    assert at.get("plotly_chart")  # the group in one chart


def test_a_killed_worker_fails_its_run_the_app_answers_and_the_page_resumes_it(runs_root, monkeypatch):
    monkeypatch.setenv("CNN_EXECUTOR", "process")
    at = open_page("pages/train.py")
    at.selectbox(key="cfg_model").set_value("lenet_modern")
    at.number_input(key="cfg_epochs").set_value(6)
    at.selectbox(key="cfg_batch_size").set_value(16)
    at.number_input(key="cfg_val_size").set_value(100)
    at.number_input(key="cfg_metrics_every").set_value(1)
    at.run()
    next(b for b in at.button if b.label == "Train").click().run()
    run_id = at.query_params["run"]
    store = RunStore(runs_root)
    wait_for(lambda: store.read(run_id).folder.resume_state.is_file(), what="the first epoch's end")
    worker = store.read(run_id).status["worker_pid"]
    assert worker != os.getpid()  # it trains in a process of its own …
    os.kill(worker, signal.SIGKILL)  # … which dies as if out of memory
    wait_for(lambda: store.read(run_id).state is RunStatus.FAILED, 60, "the run to read failed")
    at.run()  # the app answers on
    assert not at.exception, at.exception
    assert "The run failed" in texts(at) and "SIGKILL" in texts(at)
    resume = next(b for b in at.button if b.key == f"resume_{run_id}")
    resume.click().run()
    assert not at.exception, at.exception
    wait_for(lambda: store.read(run_id).state is RunStatus.FINISHED, 180, "the resumed run to finish")
    run = store.read(run_id)
    assert [e.epoch for e in run.history.epochs] == [1, 2, 3, 4, 5, 6] and run.history.test_acc is not None
    at.run()
    assert not at.exception and "finished" in texts(at)
    assert json.loads(run.folder.status.read_text())["resumed_at_step"] > 0
