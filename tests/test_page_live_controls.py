"""AppTest of the teaching instruments on the Train page: the owner steers a training run (pause, one batch by
hand, lr, resume) and the live chart gets what it needs to draw it; only the owner or, in a class, the teacher
steers (a student sets lr and momentum, only the teacher pauses; another student, a share link: nothing); a run
that ended shows its layers' gradients and weights, a chosen layer's histogram and the vanishing-gradient hint."""

from __future__ import annotations

import json
import os
import threading

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.access import new_key
from cnn_core.config import TrainConfig
from cnn_core.layer_stats import HINT
from cnn_core.runs import ControlRecord, EndRecord, EpochRecord, HandStepRecord, RunStatus, RunStore, StepRecord
from tests.conftest import as_visitor, components, open_page
from tests.test_page_class import TOKEN, button, start_class, texts
from tests.test_page_train import start_run, wait_for


def steer_keys(at: AppTest, run_id: str) -> set[str]:
    """The live controls on the page, by what they do (lr, momentum, apply, pause, resume, step)."""
    keys = [w.key for kind in ("button", "number_input") for w in at.get(kind) if w.key]
    return {k.removeprefix("steer_").removesuffix(f"_{run_id}") for k in keys if k.startswith("steer_")}


def test_the_owner_pauses_steps_one_batch_sets_the_lr_and_resumes_from_the_page(runs_root):
    at = open_page("pages/train.py")
    run_id = start_run(at, model="lenet5_bn", epochs=30)
    store = RunStore(runs_root)
    wait_for(lambda: store.read(run_id).history.steps)
    at.run()
    assert not at.exception
    assert steer_keys(at, run_id) == {"lr", "momentum", "apply", "pause"}
    assert at.number_input(key=f"steer_momentum_{run_id}").label == "Momentum (Adam's β1)"  # the form's Adam
    [chart] = components(at, "cnn_live_curves")
    data = json.loads(chart.proto.json)  # what the browser draws the layers and the hint with
    assert data["hint"] == HINT and len(data["layer_colors"]) >= 5

    button(at, f"steer_pause_{run_id}").click().run()
    assert steer_keys(at, run_id) == {"lr", "momentum", "apply", "resume", "step"}
    wait_for(lambda: store.read_status(run_id).get("paused"))
    button(at, f"steer_step_{run_id}").click().run()
    wait_for(lambda: any(isinstance(r, HandStepRecord) for r in store.read(run_id).history))
    at.number_input(key=f"steer_lr_{run_id}").set_value(0.0123)
    button(at, f"steer_apply_{run_id}").click().run()
    button(at, f"steer_resume_{run_id}").click().run()
    assert not at.exception
    assert steer_keys(at, run_id) == {"lr", "momentum", "apply", "pause"}
    [hand] = [r for r in store.read(run_id).history if isinstance(r, HandStepRecord)]
    wait_for(lambda: any(isinstance(r, StepRecord) and r.step > hand.step for r in store.read(run_id).history))
    history = store.read(run_id).history
    assert [(r.action, r.lr) for r in history.controls][1:] == [("set", 0.0123), ("resume", 0.0123)]
    assert history.controls[0].action == "pause" and history.controls[0].paused
    assert history.controls[0].step + 1 == hand.step  # one batch after the pause, exactly
    assert next(r for r in history.steps if r.step > hand.step).lr == 0.0123  # the next record: the new lr
    next(b for b in at.button if b.label == "Cancel run").click().run()
    wait_for(lambda: store.read(run_id).state is RunStatus.STOPPED)


def test_a_bad_learning_rate_is_one_sentence(runs_root):
    at = open_page("pages/train.py")
    run_id = start_run(at, model="lenet5_bn", epochs=30)
    store = RunStore(runs_root)
    wait_for(lambda: store.read(run_id).state is RunStatus.RUNNING)
    at.run()
    at.number_input(key=f"steer_lr_{run_id}").set_value(0.0)
    button(at, f"steer_apply_{run_id}").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Learning rate must be above 0 and at most 10 (try 1e-3 for Adam, "
                                           "0.01-0.1 for SGD)."]
    next(b for b in at.button if b.label == "Cancel run").click().run()
    wait_for(lambda: not store.read(run_id).state.is_active)


@pytest.fixture
def school(studio, monkeypatch):
    """A class whose runs train in the server's threads and are held "training" until stopped, each keeping
    the commands it was sent."""
    import cnn_core.runs.executors as executors
    from cnn_core.runs.protocol import Began, Ended

    monkeypatch.setenv("CNN_TEACHER_TOKEN", TOKEN)
    monkeypatch.setenv("CNN_EXECUTOR", "inline")
    received: list = []
    release = threading.Event()

    def held_train_job(job, send, stop, callbacks=None, controls=None):
        send(Began(10, "cpu", os.getpid(), 0, 1, 0.0))
        while not (release.is_set() or stop.is_set()):
            received.extend(controls.take(timeout=0.02))
        send(Ended(RunStatus.STOPPED))

    monkeypatch.setattr(executors, "train_job", held_train_job)
    studio.received = received
    yield studio
    release.set()


def test_in_a_class_the_owner_sets_lr_only_the_teacher_pauses_and_others_get_no_controls(school):
    teacher = new_key()
    start_class(teacher)
    ann_key = new_key()
    ann = as_visitor("pages/class.py", ann_key)
    ann.text_input(key="class_name").set_value("Ann")
    button(ann, "join_class").click().run()
    train = as_visitor("pages/train.py", ann_key)
    train.selectbox(key="cfg_model").set_value("mlp").run()
    next(b for b in train.button if b.label == "Train").click().run()
    run_id = train.query_params["run"]
    store = RunStore(school.runs)
    wait_for(lambda: store.read(run_id).state is RunStatus.RUNNING)

    mine = as_visitor("pages/train.py", ann_key, run=run_id)  # the student who owns it: lr and momentum
    assert steer_keys(mine, run_id) == {"lr", "momentum", "apply"}
    assert "only the teacher pauses runs" in texts(mine)
    bob_key = new_key()
    bob = as_visitor("pages/class.py", bob_key)
    bob.text_input(key="class_name").set_value("Bob")
    button(bob, "join_class").click().run()
    for other in (as_visitor("pages/train.py", bob_key, run=run_id),  # another student: sees it, steers nothing
                  as_visitor("pages/train.py", new_key(), run=run_id, share="0" * 32)):  # a link: the same
        assert not other.exception and components(other, "cnn_live_curves")
        assert steer_keys(other, run_id) == set()
    lead = as_visitor("pages/train.py", teacher, run=run_id)  # the teacher: everything
    assert steer_keys(lead, run_id) == {"lr", "momentum", "apply", "pause"}
    button(lead, f"steer_pause_{run_id}").click().run()
    assert steer_keys(lead, run_id) == {"lr", "momentum", "apply", "resume", "step"}
    wait_for(lambda: [c.action for c in school.received] == ["pause"])


def ended_run(store: RunStore) -> str:
    """A finished run of a sigmoid network whose first layers' gradients vanished, lr set by hand once."""
    run_id = store.create(TrainConfig(model="custom", epochs=1, optimizer="sgd", lr=0.1))
    layers = ["conv1", "conv2", "fc1"]
    for step, vanishing in ((10, None), (20, ["conv1", "conv2"])):
        store.append(run_id, StepRecord(
            1, step, step / 10, 2.3, 0.1, 0.1, grad_norms={"conv1": 1e-6, "conv2": 1e-5, "fc1": 0.1},
            weight_norms=dict.fromkeys(layers, 3.0),
            weight_hist={name: {"lo": -0.5, "hi": 0.5, "counts": [step, 2, 3, 4]} for name in layers},
            vanishing=vanishing))
        if step == 10:
            store.append(run_id, ControlRecord(1, 10, 1.0, "set", 0.5, None, False))
    store.append(run_id, EpochRecord(1, 20, 2.0, 2.3, 0.1, 2.3, 0.1, 0.5, 2.0, 500.0))
    store.append(run_id, EndRecord(1, 20, 2.1, RunStatus.FINISHED, 2.3, 0.1, 2.1))
    store.set_status(run_id, RunStatus.FINISHED, step=20, total_steps=20)
    return run_id


def test_an_ended_run_shows_its_layers_a_chosen_histogram_and_the_vanishing_hint(runs_root):
    run_id = ended_run(RunStore(runs_root))
    at = open_page("pages/train.py")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning if "vanished" in w.value] == [
        HINT["many"].format(layers="conv1 and conv2")]
    keys = [c.proto.id for c in at.get("plotly_chart")]
    assert any(k.endswith(f"-layers_{run_id}") for k in keys) and any(k.endswith(f"-hist_{run_id}") for k in keys)
    curves = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-curves_{run_id}"))
    assert [s["x0"] for s in curves["layout"]["shapes"]] == [10, 10, 10]  # the lr set by hand, marked
    picker = at.selectbox(key=f"hist_layer_{run_id}")
    assert picker.options == ["conv1", "conv2", "fc1"]
    picker.set_value("fc1").run()
    hist = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-hist_{run_id}"))
    assert hist["layout"]["title"]["text"] == "fc1: its weights"
    assert [trace["y"] for trace in hist["data"]] == [[10, 2, 3, 4], [20, 2, 3, 4]]
