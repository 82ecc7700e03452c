"""Runs belong to their owner (hosted): a second visitor, on every path that takes a run id or lists runs,
sees none of the first visitor's runs and can do nothing to them; a read-only share link shows a run and
offers no action. Each visitor is a secret key (tests set it as the session's key; browsers get a cookie)."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from cnn_core.access import VISITOR_COOKIE, new_key, owner_tag
from cnn_core.config import TrainConfig
from cnn_core.runs import RunStatus, RunStore
from tests.conftest import as_visitor, components, save_tiny, tampered

ALICE, BOB = new_key(), new_key()


@pytest.fixture
def class_(studio, monkeypatch):
    """A hosted app in which Alice has a run training (held at its first step) and a finished run with a
    checkpoint; runs train in the server's threads here so that the test can hold one."""
    import os

    import cnn_core.runs.executors as executors
    from cnn_core.runs.protocol import Began, Ended

    monkeypatch.setenv("CNN_HOSTED", "1")
    monkeypatch.setenv("CNN_EXECUTOR", "inline")
    release = threading.Event()

    def held_train_job(job, send, stop, callbacks=None, controls=None):  # "training" until stopped or the test ends
        send(Began(10, "cpu", os.getpid(), 0, 1, 0.0))
        while not (release.is_set() or stop.is_set()):
            time.sleep(0.02)
        send(Ended(RunStatus.STOPPED))

    monkeypatch.setattr(executors, "train_job", held_train_job)
    store = RunStore(studio.runs)
    finished = store.create(TrainConfig(model="custom"), owner=owner_tag(ALICE))
    save_tiny(store.folder(finished).checkpoint_path("last.safetensors"))
    store.set_status(finished, RunStatus.FINISHED, step=10, total_steps=10, test_acc=0.5)
    alice = as_visitor("pages/train.py", ALICE)
    alice.selectbox(key="cfg_model").set_value("mlp").run()
    next(b for b in alice.button if b.label == "Train").click().run()
    running = alice.query_params["run"]
    deadline = time.monotonic() + 30
    while store.read(running).state is not RunStatus.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    yield store, running, finished
    release.set()


def steer_widgets(at: AppTest) -> list:
    """The live controls on the page (ui/live_controls.py)."""
    return [w for kind in ("button", "number_input") for w in at.get(kind) if (w.key or "").startswith("steer_")]


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "error") for e in at.get(kind)]
    return " ".join(str(p) for p in parts) + " ".join(str(p.proto.text) for p in at.get("progress"))


def test_the_sidebar_shows_a_stranger_the_queue_length_only(class_):
    store, running, _ = class_
    bob = as_visitor("pages/home.py", BOB)
    assert running not in texts(bob) and "1 other run training or waiting" in texts(bob)
    alice = as_visitor("pages/home.py", ALICE)
    assert running in texts(alice) and "other run" not in texts(alice)


@pytest.mark.parametrize("which", ["running", "finished"])
def test_a_strangers_run_id_opens_as_not_found_with_no_action(class_, which):
    store, running, finished = class_
    run_id = running if which == "running" else finished
    bob = as_visitor("pages/train.py", BOB, run=run_id)
    assert f"There is no run `{run_id}`" in texts(bob)
    assert not [b for b in bob.button if b.label in ("Cancel run", "Inspect this model", "Draw for this model")]
    assert not components(bob, "cnn_live_curves") and not bob.get("plotly_chart")
    assert store.read(running).state is RunStatus.RUNNING and store.folder(finished).path.exists()  # untouched
    alice = as_visitor("pages/train.py", ALICE, run=run_id)  # her own: the view, with its actions
    assert "There is no run" not in texts(alice)
    wanted = "Cancel run" if which == "running" else "Inspect this model"
    assert [b for b in alice.button if b.label == wanted]


def test_the_runs_page_lists_compares_and_deletes_only_ones_own_runs(class_):
    store, running, finished = class_
    bob = as_visitor("pages/runs.py", BOB, compare=f"{running},{finished}")
    assert "No runs yet" in texts(bob) and not components(bob, "cnn_live_curves") and not bob.get("plotly_chart")
    assert not [b for b in bob.button if b.label == "Delete run"] and not bob.get("download_button")
    alice = as_visitor("pages/runs.py", ALICE, compare=f"{running},{finished}")
    assert set(alice.multiselect[0].value) == {running, finished}


@pytest.mark.parametrize("page", ["pages/inspect.py", "pages/draw.py"])
def test_model_pickers_offer_a_stranger_no_run(class_, page):
    _, _, finished = class_
    bob = as_visitor(page, BOB)
    assert not [o for o in bob.selectbox(key="model_picker").options if finished in o]
    alice = as_visitor(page, ALICE)
    assert [o for o in alice.selectbox(key="model_picker").options if finished in o]


def test_a_read_only_share_link_shows_the_run_and_offers_no_action(class_):
    from ui.jobs import access

    store, running, finished = class_
    owner_view = as_visitor("pages/train.py", ALICE, run=running)
    token = access().share_token(running)
    assert f"share={token}" in texts(owner_view)  # offered to the owner …
    viewer = as_visitor("pages/train.py", BOB, run=running, share=token)  # … opened by someone else
    assert "There is no run" not in texts(viewer) and "share=" not in texts(viewer)
    [chart] = components(viewer, "cnn_live_curves")
    assert f"/api/runs/{running}/events?share={token}" in chart.proto.json
    assert not [b for b in viewer.button if b.label == "Cancel run"]
    steer = sorted(w.key.removesuffix(f"_{running}") for w in steer_widgets(owner_view))
    assert steer == ["steer_apply", "steer_lr", "steer_momentum"]
    assert "a paused run would keep its training slot" in texts(owner_view)  # no pause: hosted, it holds the queue
    assert not steer_widgets(viewer)
    assert "There is no run" in texts(as_visitor("pages/train.py", BOB, run=finished, share=token))  # that run only
    assert "No runs yet" in texts(as_visitor("pages/runs.py", BOB, share=token))
    assert store.read(running).state is RunStatus.RUNNING


def test_the_live_stream_answers_only_the_owner_or_a_share_link(class_):
    from ui import stream

    store, running, _ = class_
    stream._hubs.clear()
    with TestClient(Starlette(routes=stream.routes(), middleware=stream.middleware())) as client:  # one event loop
        check_stream(client, running, stream.hub().access.share_token(running))


def check_stream(client: TestClient, running: str, token: str) -> None:
    url = f"/api/runs/{running}/events"
    for cookies, query in (({VISITOR_COOKIE: BOB}, ""), ({}, ""), ({VISITOR_COOKIE: BOB}, f"?share={tampered(token)}")):
        with client.stream("GET", url + query, cookies=cookies) as response:  # a wrong grant fails, never hangs
            assert response.status_code == 404
    for cookies, query in (({VISITOR_COOKIE: ALICE}, ""), ({VISITOR_COOKIE: BOB}, f"?share={token}")):
        with client.stream("GET", url + query, cookies=cookies) as response:
            assert response.status_code == 200
            assert next(response.iter_bytes())  # the backlog / status arrives
    page = client.get("/api/runs/x/events", headers={"accept": "text/html"})
    set_cookie = page.headers.get("set-cookie", "")
    assert set_cookie.startswith(f"{VISITOR_COOKIE}=") and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert len(set_cookie.split(";")[0].split("=", 1)[1]) >= 43  # >= 256 random bits


def test_the_gradio_twin_offers_no_run_and_refuses_one_by_path(class_):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from PIL import Image

    from tests.test_gradio_app import PRETRAINED, SEVEN, serve_gradio, stroke_layer

    store, _, finished = class_
    path = str(store.folder(finished).checkpoint_path("last.safetensors"))
    image = store.root.parent / "strokes.png"
    Image.fromarray(stroke_layer(SEVEN)).save(image)
    value = {"background": None, "layers": [handle_file(image)], "composite": None}
    with serve_gradio(CNN_RUNS_DIR=str(store.root), CNN_HOSTED="1") as client:
        for key in (None, ALICE):  # the twin's own visitors (tests/test_gradio_twin.py) never reach the app's runs
            with pytest.raises(AppError, match="not in the list of choices"):  # gradio checks the offered choices
                client.predict(value, path, "conv1", key, api_name="/predict")
        label, *_ = client.predict(value, str(PRETRAINED), "conv1", None, api_name="/predict")
    assert label["label"] == "7"  # the pretrained models stay usable
    import gradio_app

    for key in (None, ALICE):
        assert [c for c in gradio_app.model_choices(key) if "run" in c[0]] == []
        assert "not one this page offers" in gradio_app.classify(value, path, "conv1", key)[-1]  # so does the function
