"""ui/board_view.py: the class board built once per change and pushed to every page that watches it."""

from __future__ import annotations

import asyncio
import threading

from starlette.applications import Starlette
from starlette.testclient import TestClient

from cnn_core.classroom import ClassStore
from cnn_core.config import TrainConfig
from cnn_core.runs import EpochRecord, RunStore
from tests.conftest import run_async
from tests.test_stream import parse
from ui import board_view, stream
from ui.board_view import BoardFeed, BoardViews


def class_with_run(root):
    room = ClassStore(root).start("teacher-tag")
    store = RunStore(root)
    run_id = store.create(TrainConfig(model="mlp", epochs=3), "ann-tag", name="Ann", **{"class": room.id})
    store.append(run_id, epoch(1, 0.81))
    return room, store, run_id


def epoch(n: int, val_acc: float) -> EpochRecord:
    return EpochRecord(n, 10 * n, 1.0 * n, 0.5, 0.8, 0.5, val_acc, 1e-3, 1.0, 100.0)


def test_thirty_sessions_at_once_get_one_view_built_once(tmp_path):
    room, store, _ = class_with_run(tmp_path)
    views = BoardViews(store, read_every=60)
    barrier, seen = threading.Barrier(30), []

    def session():
        barrier.wait()
        seen.append(views.get(room))

    threads = [threading.Thread(target=session) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 30 and all(v is seen[0] for v in seen)
    assert views.builds == 1  # built once for the class, not once per phone
    (run,) = seen[0].data["runs"]
    assert (run["name"], run["model"], run["epochs"], run["val_acc"]) == ("Ann", "mlp", [1], [0.81])
    assert parse([seen[0].event]) == [("board", seen[0].data, None)]  # the event, serialized once


def test_a_new_epoch_a_join_a_shared_drawing_are_new_versions_and_nothing_new_is_the_same_view(tmp_path):
    room, store, run_id = class_with_run(tmp_path)
    views = BoardViews(store, read_every=0)
    first = views.get(room)
    assert views.get(room) is first and views.builds == 1  # read again, unchanged: the same view
    store.append(run_id, epoch(2, 0.92))
    second = views.get(room)
    assert second.version != first.version and second.data["runs"][0]["val_acc"] == [0.81, 0.92]
    classes = ClassStore(tmp_path)
    classes.join("bob-tag", "Bob")
    third = views.get(classes.current())
    assert third.version != second.version and third.data["students"] == 1
    classes.share_drawing("bob-tag", [[0.0] * 28] * 28, "7", 0.9, "mlp")
    (drawing,) = views.get(classes.current()).data["wall"]
    assert drawing["name"] == "Bob" and drawing["image"].startswith("data:image/png;base64,")
    assert views.builds == 4


def test_a_view_is_read_at_most_every_read_every_seconds(tmp_path):
    room, store, run_id = class_with_run(tmp_path)
    views = BoardViews(store, read_every=60)
    first = views.get(room)
    store.append(run_id, epoch(2, 0.92))
    assert views.get(room) is first  # within read_every: the folder is not read again
    views.read_every = 0
    assert views.get(room) is not first


async def collect(feed: BoardFeed) -> list[bytes]:
    return [chunk async for chunk in feed.events()]


def test_thirty_watchers_get_every_change_from_one_reader_and_ended_when_the_class_ends(tmp_path, monkeypatch):
    room, store, run_id = class_with_run(tmp_path)
    reads = []
    real_tail = store.tail
    monkeypatch.setattr(store, "tail", lambda *a: reads.append(a) or real_tail(*a))

    async def scenario():
        feed = BoardFeed(store, poll_s=0.05)
        readers = [asyncio.create_task(collect(feed)) for _ in range(30)]
        await asyncio.sleep(0.2)
        for n, acc in ((2, 0.9), (3, 0.95)):
            store.append(run_id, epoch(n, acc))
            await asyncio.sleep(0.2)
        ClassStore(tmp_path).end([store.folder(run_id).path])
        return await asyncio.wait_for(asyncio.gather(*readers), 10)

    results = run_async(scenario())
    for chunks in results:
        events = parse(chunks)
        assert [kind for kind, _, _ in events] == ["board"] * 3 + ["ended"], events
        assert [data["runs"][0]["val_acc"] for kind, data, _ in events[:3]] == [[0.81], [0.81, 0.9], [0.81, 0.9, 0.95]]
    assert len(reads) < 40, f"{len(reads)} reads of metrics.jsonl for 30 watchers over ~15 polls"


def test_the_route_streams_the_board_and_says_ended_without_a_class(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path))
    board_view._feeds.clear()
    client = TestClient(Starlette(routes=stream.routes()))
    response = client.get("/api/class/board/events")  # no class: the stream says so and closes
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert [kind for kind, _, _ in parse([response.content])] == ["ended"]
    room, store, _ = class_with_run(tmp_path)
    with client.stream("GET", "/api/class/board/events") as live:
        first = next(live.iter_bytes())
    (kind, data, _), = parse([first])
    assert kind == "board" and data["class"] == room.id and data["runs"][0]["name"] == "Ann"
