"""The live-curve stream (ui/stream.py): one reader per watched run, whatever the number of watchers."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from cnn_core.config import TrainConfig
from cnn_core.runs import EndRecord, RunStatus, RunStore, StepRecord
from tests.conftest import run_async
from ui import stream
from ui.stream import RunFeedHub


def parse(chunks: list[bytes]) -> list[tuple[str, object, str | None]]:
    """SSE bytes → (event, data, id) in order (heartbeat comments dropped)."""
    out = []
    for block in b"".join(chunks).decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"]), fields.get("id")))
    return out


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def step(n: int, loss: float | None = None) -> StepRecord:
    return StepRecord(1, n, 0.1 * n, 1 / n if loss is None else loss, 0.5, 1e-3)


def new_run(store: RunStore, records: int = 0) -> str:
    run_id = store.create(TrainConfig(model="mlp"))
    store.set_status(run_id, RunStatus.RUNNING, step=0, total_steps=100)
    for n in range(1, records + 1):
        store.append(run_id, step(n))
    return run_id


async def collect(hub: RunFeedHub, run_id: str, after: int = 0) -> list[bytes]:
    return [chunk async for chunk in hub.events(run_id, after)]


def test_backlog_then_live_records_then_the_final_status(store):
    run_id = new_run(store, records=3)

    async def scenario():
        hub = RunFeedHub(store, poll_s=0.02)
        reader = asyncio.create_task(collect(hub, run_id))
        for n in range(4, 9):
            await asyncio.sleep(0.05)
            store.append(run_id, step(n, float("nan") if n == 8 else None))
        store.append(run_id, EndRecord(1, 8, 1.0, RunStatus.FINISHED, 0.3, 0.9, 1.0))
        store.set_status(run_id, RunStatus.FINISHED, step=8)
        return await asyncio.wait_for(reader, 10)

    events = parse(run_async(scenario()))
    records = [r for kind, data, _ in events if kind == "records" for r in data]
    assert [r.get("step") for r in records] == [1, 2, 3, 4, 5, 6, 7, 8, 8]
    assert records[7]["train_loss"] is None  # NaN travels as null: the browser's JSON.parse has no NaN
    assert events[-1] == ("status", events[-1][1], None)
    assert events[-1][1]["status"] == "finished"  # … and the stream ends there
    ids = [int(i) for kind, _, i in events if kind == "records"]
    assert ids == sorted(ids) and ids[-1] == 9 and len(ids) > 2  # the backlog, then several live batches


def test_a_reconnect_gets_only_what_it_missed(store):
    run_id = new_run(store, records=5)
    store.set_status(run_id, RunStatus.FINISHED)
    events = parse(run_async(collect(RunFeedHub(store), run_id, after=3)))
    assert [r["step"] for kind, data, _ in events if kind == "records" for r in data] == [4, 5]


def test_thirty_watchers_cost_one_read_per_update(store, monkeypatch):
    run_id = new_run(store, records=2)
    reads = []
    real_tail = store.tail
    monkeypatch.setattr(store, "tail", lambda *a: reads.append(a) or real_tail(*a))

    async def scenario():
        hub = RunFeedHub(store, poll_s=0.05)
        readers = [asyncio.create_task(collect(hub, run_id)) for _ in range(30)]
        await asyncio.sleep(0.1)
        for n in range(3, 13):
            store.append(run_id, step(n))
            await asyncio.sleep(0.06)
        store.set_status(run_id, RunStatus.FINISHED)
        return await asyncio.wait_for(asyncio.gather(*readers), 10), hub

    results, hub = run_async(scenario())
    for chunks in results:
        assert [r["step"] for kind, data, _ in parse(chunks) if kind == "records" for r in data] == list(range(1, 13))
    polls = len(reads)
    assert polls < 40, f"{polls} reads of metrics.jsonl for 30 watchers over ~20 polls: each watcher reads it itself"
    assert hub.watched() == {}  # the run ended: nobody reads it any more


def test_a_deleted_run_says_gone(store):
    run_id = new_run(store, records=1)

    async def scenario():
        hub = RunFeedHub(store, poll_s=0.02)
        reader = asyncio.create_task(collect(hub, run_id))
        await asyncio.sleep(0.1)
        store.delete(run_id)
        return await asyncio.wait_for(reader, 10)

    assert parse(run_async(scenario()))[-1][0] == "gone"


def test_the_route_answers_404_for_an_unknown_run_or_a_path(store, monkeypatch):
    monkeypatch.setenv("CNN_RUNS_DIR", str(store.root))
    stream._hubs.clear()
    client = TestClient(Starlette(routes=stream.routes()))
    assert client.get("/api/runs/20200101-000000-mlp-00000000/events").status_code == 404
    assert client.get("/api/runs/..%2F..%2Fetc/events").status_code == 404
    run_id = new_run(store, records=2)
    store.set_status(run_id, RunStatus.FINISHED)
    response = client.get(f"/api/runs/{run_id}/events")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert [kind for kind, _, _ in parse([response.content])] == ["records", "status"]
