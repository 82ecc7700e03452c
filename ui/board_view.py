"""The class board as data, built once per change and pushed to every page that shows it.

`GET /api/class/board/events` (server-sent events, routed in ui/stream.py): `board` with the whole board (the
class's runs with their validation accuracy by epoch, the leaderboard's facts, the drawing wall, who joined, the
projected run) on connect and whenever it changes; `ended` when the class ends (the stream then closes). The
browser draws it (ui/class_board.js): a page on the board costs an open connection, not a script rerun.

Twenty-five phones that reran the board page every 2 s, each building the chart, the leaderboard and the wall,
cost ~0.4 s of Python per rerun under one GIL: the server fell minutes behind (`bench/classroom_load.py --class`).
Here one task per runs folder reads the board every POLL_S while anyone watches (in a worker thread: the event
loop never waits on the disk), compares its version (a hash of what it shows) and serializes a new version once
for every watcher.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnn_core.classroom import ClassStore, Classroom, board, lesson_steps
from cnn_core.plots.inspect import png_data_uri
from cnn_core.runs import RunStatus, RunStore
from cnn_core.runs.store import LiveRuns

POLL_S = 0.5  # how often a watched board is read: with the browser's draw, a change shows within a second
HEARTBEAT_S = 15.0
LINGER_S = 10.0  # a board nobody watches any more is read this much longer (a reload comes straight back)
WALL_SIZE = 16


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True)
class BoardView:
    """What the board shows of one class at one moment, and its `board` event (serialized once)."""

    class_id: str
    version: str
    data: dict[str, Any]
    event: bytes


class BoardViews:
    """The current BoardView of a runs folder, safe to ask from any number of threads at once: one reads the
    folder (at most every `read_every` seconds) and builds a new view when something changed; the others wait
    for it and get the same view."""

    def __init__(self, store: RunStore, read_every: float = POLL_S):
        self.store, self.read_every = store, read_every
        self.runs = LiveRuns(store)  # read incrementally: new metrics lines only
        self._lock = threading.Lock()
        self._view: BoardView | None = None
        self._read_at = -math.inf
        self._images: dict[str, str] = {}  # drawing id → PNG data URI (made once per drawing)
        self.builds = 0  # views built: once per change, not once per watcher

    def get(self, room: Classroom) -> BoardView:
        with self._lock:
            view, now = self._view, time.monotonic()
            if view is not None and view.class_id == room.id and now - self._read_at < self.read_every:
                return view
            entries = board(self.runs.list(keep=lambda meta: meta.get("class") == room.id), room)
            drawings = ClassStore(self.store.root).wall(limit=WALL_SIZE)
            steps = [s.title for s in lesson_steps(room.lesson)]
            data = {"class": room.id, "lesson": room.lesson, "step": room.step, "steps": steps,
                    "students": len(room.students), "projected": room.projected,
                    "runs": [{**dataclasses.asdict(e), "val_acc": _finite(e.val_acc), "test_acc": _finite(e.test_acc),
                              "best_val_acc": _finite(e.best_val_acc), "icon": RunStatus.parse(e.state).icon,
                              "active": RunStatus.parse(e.state).is_active} for e in entries],
                    "wall": [{"id": d.id, "name": d.name, "prediction": d.prediction, "confidence": d.confidence,
                              "model": d.model, "image": self._image(d)} for d in drawings]}
            version = hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=8).hexdigest()
            if view is None or view.version != version:
                data["version"] = version
                view = BoardView(room.id, version, data, sse("board", data))
                self.builds += 1
                self._images = {d.id: self._images[d.id] for d in drawings}  # forget drawings off the wall
            self._view, self._read_at = view, now
            return view

    def _image(self, drawing) -> str:
        if drawing.id not in self._images:
            self._images[drawing.id] = png_data_uri(np.array(drawing.pixels, dtype=np.uint8))
        return self._images[drawing.id]


class BoardFeed:
    """The board of one runs folder as a stream for any number of watchers: one task reads it while anyone
    watches, and each new version wakes them all with the same serialized event."""

    def __init__(self, store: RunStore, poll_s: float = POLL_S):
        self.views, self.poll_s = BoardViews(store, read_every=poll_s / 2), poll_s
        self.classes = ClassStore(store.root)
        self.view: BoardView | None = None
        self.ended = False
        self.watchers = 0
        self.changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    def _read(self) -> tuple[BoardView | None, bool]:
        """The board now (None and True when no class runs). In a worker thread: it reads the disk."""
        room = self.classes.current()
        return (self.views.get(room), False) if room is not None else (None, True)

    async def _poll(self) -> None:
        idle = 0.0
        try:
            while idle < LINGER_S:
                view, ended = await asyncio.to_thread(self._read)
                if ended != self.ended or (view is not None and view is not self.view):
                    self.view, self.ended = view, ended
                    self.changed.set()
                    self.changed = asyncio.Event()  # the next change wakes those who wait from now on
                await asyncio.sleep(self.poll_s)
                idle = idle + self.poll_s if self.watchers == 0 else 0.0
        finally:
            self._task = None

    async def events(self) -> AsyncIterator[bytes]:
        """The board now, then each new version; `ended` (and the end of the stream) when no class runs."""
        self.watchers += 1
        try:
            if self._task is None:  # nobody watched lately: start afresh (the first read wakes us)
                self.view, self.ended = None, False
                self._task = asyncio.get_running_loop().create_task(self._poll())
            sent = None
            while True:
                changed = self.changed
                if self.ended:
                    yield sse("ended", {})
                    return
                if self.view is not None and self.view is not sent:
                    yield self.view.event
                    sent = self.view
                try:
                    await asyncio.wait_for(changed.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": still here\n\n"
        finally:
            self.watchers -= 1


_feeds: dict[str, BoardFeed] = {}


def feed(root: Path) -> BoardFeed:
    """The board feed of a runs folder, made on first use (in the server's event loop)."""
    key = str(Path(root).resolve())
    if key not in _feeds:
        _feeds[key] = BoardFeed(RunStore(key))
    return _feeds[key]
