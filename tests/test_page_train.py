"""AppTest of the Train and Runs pages: start a tiny run, see it progress, cancel one, compare runs."""

import time

from streamlit.testing.v1 import AppTest

from cnn_core.runs import EndRecord, EpochRecord, RunStatus, RunStore
from tests.conftest import components, open_page


def wait_for(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def start_run(at: AppTest, model="mlp", epochs=1) -> str:
    at.selectbox(key="cfg_model").set_value(model)
    at.number_input(key="cfg_epochs").set_value(epochs)
    at.selectbox(key="cfg_batch_size").set_value(32)
    at.number_input(key="cfg_val_size").set_value(100)
    at.number_input(key="cfg_metrics_every").set_value(2)
    at.run()
    [b for b in at.button if b.label == "Train"][0].click().run()
    assert not at.exception
    return at.query_params["run"]


def test_train_page_starts_a_run_and_shows_its_progress(runs_root):
    at = open_page("pages/train.py")
    assert not at.exception
    assert "press **Train**" in at.info[0].value
    run_id = start_run(at)
    store = RunStore(runs_root)
    wait_for(lambda: store.read(run_id).state is RunStatus.FINISHED)
    at.run()
    assert not at.exception
    assert any("finished" in m.value for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["test accuracy"].endswith("%") and metrics["best val accuracy"].endswith("%")
    assert at.get("plotly_chart")
    next(b for b in at.button if b.label == "Inspect this model").click().run()
    assert not at.exception
    assert at.title[0].value == "🔬 Inspect a model"
    assert at.selectbox(key="model_picker").value == f"run · {run_id}"


def test_cancel_from_the_page(runs_root):
    at = open_page("pages/train.py")
    run_id = start_run(at, model="lenet5_bn", epochs=30)
    store = RunStore(runs_root)
    wait_for(lambda: store.read(run_id).history)
    at.run()
    cancel = [b for b in at.button if b.label == "Cancel run"]
    assert cancel, "an active run offers a cancel button"
    cancel[0].click().run()
    wait_for(lambda: store.read(run_id).state is RunStatus.STOPPED)
    assert store.read(run_id).progress < 1.0


def test_bad_custom_stack_is_explained_next_to_its_layer(runs_root):
    at = open_page("pages/train.py")
    at.selectbox(key="cfg_model").set_value("custom").run()
    at.number_input(key="l0_k").set_value(11).run()  # 28x28 → 20x20, pooled to 10x10
    at.number_input(key="l3_k").set_value(11)
    at.number_input(key="l3_p").set_value(0).run()  # an 11x11 kernel does not fit 10x10 without padding
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("Layer 4") and "does not fit" in e for e in errors)
    assert [b for b in at.button if b.label == "Train"][0].disabled


def test_runs_page_lists_and_overlays(runs_root):
    empty = open_page("pages/runs.py")
    assert not empty.exception and "No runs yet" in empty.info[0].value
    at = open_page("pages/train.py")
    first = start_run(at)
    store = RunStore(runs_root)
    wait_for(lambda: store.read(first).state is RunStatus.FINISHED)
    second = start_run(at, epochs=1)
    wait_for(lambda: store.read(second).state is RunStatus.FINISHED)
    runs = open_page("pages/runs.py")
    assert not runs.exception
    assert set(runs.multiselect[0].value) == {first, second}
    chart = runs.get("plotly_chart")[0]
    assert first in chart.proto.spec and second in chart.proto.spec


def test_a_lesson_starts_its_runs_and_compares_them(runs_root):
    from cnn_core.presets import LESSONS, PRESETS

    lesson = LESSONS["The course notebook: as written vs fixed"]
    at = open_page("pages/train.py")
    at.selectbox(key="lesson").set_value(lesson.name).run()
    next(b for b in at.button if b.key == "lesson_start").click().run()
    assert not at.exception
    assert at.title[0].value == "📈 Runs"
    ids = at.query_params["compare"].split(",")
    assert at.multiselect[0].value == ids
    store = RunStore(runs_root)
    configs = [store.read(run_id).config for run_id in ids]
    assert configs == [PRESETS[name].config for name in lesson.recipes]
    assert [(c.model_args.get("softmax", False), c.normalize) for c in configs] == [
        (True, False), (False, False), (True, True), (False, True)]  # as written, each fix, both
    assert {(c.model, c.optimizer, c.lr, c.epochs) for c in configs} == {("mlp", "sgd", 0.01, 10)}
    wait_for(lambda: all(store.read(run_id).state is RunStatus.FINISHED for run_id in ids), timeout=300)
    at.switch_page("pages/runs.py").run()  # AppTest reruns the page it last switched to, not the script's switch
    assert not at.exception
    overlay = at.get("plotly_chart")[0].proto.spec
    assert all(run_id in overlay for run_id in ids)


def test_hosted_mode_clamps_runs_and_keeps_them_private(runs_root, monkeypatch):
    monkeypatch.setenv("CNN_HOSTED", "1")
    monkeypatch.setenv("CNN_MAX_TRAIN_SUBSET", "300")
    at = open_page("pages/train.py")
    run_id = start_run(at, epochs=10)
    store = RunStore(runs_root)
    run = store.read(run_id)
    assert run.config.epochs == 3 and run.config.train_subset == 300 and run.config.device == "cpu"
    from cnn_core.access import owner_tag

    assert run.status["owner"] == owner_tag(at.session_state["visitor_key"])  # a hash of the key, never the key
    assert "me" not in at.query_params and at.session_state["visitor_key"] not in str(at.query_params)
    wait_for(lambda: store.read(run_id).state is RunStatus.FINISHED)
    stranger = open_page("pages/runs.py")
    assert not stranger.exception and "No runs yet" in stranger.info[0].value


def test_hosted_lesson_starts_all_its_runs_or_none(runs_root, monkeypatch):
    monkeypatch.setenv("CNN_HOSTED", "1")
    monkeypatch.setenv("CNN_MAX_QUEUED_RUNS", "1")  # room for 2 runs: the 4-run lesson does not fit
    at = open_page("pages/train.py")
    at.selectbox(key="lesson").set_value("The course notebook: as written vs fixed").run()
    next(b for b in at.button if b.key == "lesson_start").click().run()
    assert not at.exception
    assert "4 runs need room together (at most 2 at once)" in at.error[0].value
    assert RunStore(runs_root).list() == [], "a refused lesson must not leave half its runs training"


def test_a_lesson_run_shows_its_accuracy_beside_the_tutorials(runs_root):
    from cnn_core.presets import PRESETS

    preset = PRESETS["Course notebook: MLP — SGD 0.001, 3 epochs"]
    store = RunStore(runs_root)
    run_id = store.create(preset.config, recipe=preset.name)
    store.set_status(run_id, RunStatus.FINISHED, step=10, total_steps=10)
    store.append(run_id, EpochRecord(3, 30, 9.0, 0.4, 0.86, 0.41, 0.87, 1e-3, 3.0, 900.0))
    store.append(run_id, EndRecord(3, 30, 9.5, RunStatus.FINISHED, 0.39, 0.8752, 9.5))
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    captions = " ".join(c.value for c in at.caption)
    assert f"reported **{preset.reported_acc:.2%}**" in captions and "reached **87.52%**" in captions
    test_tile = next(m for m in at.metric if m.label == "test accuracy")
    assert test_tile.value == "87.52%"
    assert test_tile.proto.delta == f"{(0.8752 - preset.reported_acc) * 100:+.2f} pts"


def test_an_active_run_is_drawn_live_by_the_browser_not_by_reruns(runs_root):
    """While a run trains, the Train page mounts the live chart on the run's event stream and no timed
    fragment of its own (the sidebar's is the page's only one); the Runs page overlays it the same way."""
    import json

    from cnn_core.config import TrainConfig

    store = RunStore(runs_root)
    run_id = store.create(TrainConfig(model="mlp"))
    store.set_status(run_id, RunStatus.RUNNING, pid=1, step=3, total_steps=10)  # pid 1: alive, not ours to mark
    at = open_page("pages/train.py", timeout=60)
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    [chart] = components(at, "cnn_live_curves")
    data = json.loads(chart.proto.json)
    assert chart.proto.component_name == "cnn_live_curves" and data["mode"] == "single"
    assert data["runs"][0]["url"] == f"/api/runs/{run_id}/events"
    assert [b.label for b in at.button if b.label == "Cancel run"]
    assert not at.get("plotly_chart")  # no server-drawn figure while it trains

    at.switch_page("pages/runs.py").run()
    assert not at.exception
    [overlay] = components(at, "cnn_live_curves")
    assert run_id in [r["id"] for r in json.loads(overlay.proto.json)["runs"]]
