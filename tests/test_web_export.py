"""ui/web_export.py: the route that serves a model as a web page (GET /web/page?model=<label>) to whoever may
draw with it, and the pages it builds once per checkpoint version."""

from __future__ import annotations

import os
import re

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cnn_core.access import VISITOR_COOKIE, new_key, owner_tag
from cnn_core.checkpoints import run_label
from cnn_core.config import TrainConfig
from cnn_core.runs import RunStatus, RunStore
from cnn_core.webpage import NO_RUNTIME, runtime_version
from tests.conftest import save_tiny

pytestmark = pytest.mark.skipif(runtime_version() is None and os.environ.get("CI", "").lower() != "true",
                                reason=f"not tested here: {NO_RUNTIME}")
ALICE, BOB = new_key(), new_key()


@pytest.fixture
def client(studio):
    from ui import stream

    return TestClient(Starlette(routes=stream.routes()))


def finished_run(studio, owner: str | None = None) -> str:
    store = RunStore(studio.runs)
    run_id = store.create(TrainConfig(model="custom"), owner=owner_tag(owner) if owner else None)
    save_tiny(store.folder(run_id).checkpoint_path("last.safetensors"), seed=1)
    store.set_status(run_id, RunStatus.FINISHED, step=10, total_steps=10, test_acc=0.5)
    return run_id


def get(client, label: str, key: str | None = None, **query):
    client.cookies.clear()
    if key is not None:
        client.cookies.set(VISITOR_COOKIE, key)
    return client.get("/web/page", params={"model": label, **query})


def layer_of(response) -> str:
    return re.search(r'"layer": "(\w+)"', response.text).group(1)


def test_a_pretrained_model_and_a_local_run_are_served_as_pages(client, studio):
    page = get(client, "pretrained · tiny-mnist")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!doctype html>") and layer_of(page) == "conv1"
    assert layer_of(get(client, "pretrained · tiny-mnist", layer="pool2")) == "pool2"
    run_id = finished_run(studio)
    assert get(client, run_label(run_id)).status_code == 200  # locally every run is everyone's


def test_what_is_not_offered_is_not_found_and_a_bad_layer_is_named(client, studio):
    assert get(client, "pretrained · nothing").status_code == 404
    assert get(client, "../../etc/passwd").text == "There is no such model here."
    bad = get(client, "pretrained · tiny-mnist", layer="flatten")
    assert bad.status_code == 400 and "choose one of conv1" in bad.text


def test_hosted_a_run_is_served_to_its_owner_only(client, studio, monkeypatch):
    monkeypatch.setenv("CNN_HOSTED", "1")
    run_id = finished_run(studio, owner=ALICE)
    assert get(client, run_label(run_id), ALICE).status_code == 200
    assert get(client, run_label(run_id), BOB).status_code == 404  # as if there were no such run
    assert get(client, run_label(run_id)).status_code == 404  # no cookie: nobody's
    assert get(client, "pretrained · tiny-mnist", BOB).status_code == 200  # pretrained models are everyone's


def test_without_the_runtime_the_route_says_what_to_run(client, monkeypatch):
    import cnn_core.webpage
    import ui.web_export

    monkeypatch.setattr(cnn_core.webpage, "runtime_version", lambda folder=None: None)
    ui.web_export._page.cache_clear()
    answer = get(client, "pretrained · tiny-mnist")
    assert answer.status_code == 503 and "make web" in answer.text


def test_a_page_is_built_once_per_checkpoint_version(studio, monkeypatch):
    import ui.web_export

    ui.web_export._page.cache_clear()
    first = ui.web_export.page_bytes(studio.ckpt, "conv1")
    assert ui.web_export.page_bytes(studio.ckpt, "conv1") is first
    save_tiny(studio.ckpt, seed=2)  # the run wrote a newer checkpoint
    os.utime(studio.ckpt, ns=(0, os.stat(studio.ckpt).st_mtime_ns + 1_000_000))
    assert ui.web_export.page_bytes(studio.ckpt, "conv1") is not first
