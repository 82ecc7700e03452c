"""The live-curve stream: `GET /api/runs/<id>/events`, server-sent events of a run's new records and status.

One reader per watched run, shared by every browser that watches it (as TensorBoard serves many
dashboards from one reader): it tails the run's metrics.jsonl every `POLL_S`, parses each new line once,
and serializes each batch once for all the watchers in step. A watcher costs an open connection and a
few bytes per update, not a script run. Events:

    event: status   data: the run's status.json (status, epoch, step, total_steps, elapsed, …)
    event: records  data: a JSON list of new records ({"event": "step"|"epoch"|"end", "step": …, …})
    event: gone     data: {}   (the run was deleted)

Each `records` event has `id: N`, the number of records sent so far: a reconnecting EventSource sends it
back (Last-Event-ID) and gets only what it missed. The stream ends after the run's final status.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnn_core.access import VISITOR_COOKIE, Access, Visitor, new_key, server_access
from cnn_core.runs import RunStatus, RunStore, runs_dir
from cnn_core.runs.records import to_dict

POLL_S = 0.5  # how often a watched run's files are read: the longest an update waits on the server
HEARTBEAT_S = 15.0  # a comment line on a quiet stream, so proxies keep it open
LINGER_S = 10.0  # a run nobody watches any more is read this much longer (a reload comes straight back)


def _finite(value: Any) -> Any:
    """NaN and ±inf (a diverged loss) as null: JSON has no NaN, and the browser's JSON.parse rejects it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(_finite(data), separators=(',', ':'))}\n\n".encode()


@dataclass
class _Watch:
    """One watched run: its records so far, its status, and who is waiting for more."""

    run_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0  # bytes of metrics.jsonl read so far
    status: dict[str, Any] = field(default_factory=dict)
    status_event: bytes = b""
    gone: bool = False
    watchers: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    _chunk: tuple[int, int, bytes] = (0, 0, b"")

    def records_event(self, start: int) -> bytes:
        """The records from `start` on as one event, serialized once for every watcher at `start`."""
        end = len(self.records)
        if self._chunk[:2] != (start, end):
            self._chunk = (start, end, sse("records", self.records[start:end], end))
        return self._chunk[2]

    @property
    def final(self) -> bool:
        return self.gone or (bool(self.status) and not RunStatus.parse(self.status.get("status")).is_active)


class RunFeedHub:
    """Every watched run of one runs folder, read by one task each while someone watches it."""

    def __init__(self, store: RunStore, poll_s: float = POLL_S, access: Access | None = None):
        self.store, self.poll_s = store, poll_s
        self._fixed_access = access
        self._watches: dict[str, _Watch] = {}

    @property
    def access(self) -> Access:
        """The server's rule now (it changes when a teacher starts or ends a class)."""
        return self._fixed_access or server_access(self.store.root)

    def _read(self, watch: _Watch) -> bool:
        """Read what is new on disk; True when something changed."""
        try:
            status = self.store.read_status(watch.run_id)
        except (KeyError, OSError, ValueError):
            if not self.store.folder(watch.run_id).path.exists():
                watch.gone = True
                return True
            return False  # status.json being replaced: next time
        records, watch.offset = self.store.tail(watch.run_id, watch.offset)
        watch.records.extend(to_dict(r) for r in records)
        changed = bool(records) or status != watch.status
        if status != watch.status:
            watch.status, watch.status_event = status, sse("status", status)
        return changed

    async def _poll(self, watch: _Watch) -> None:
        idle = 0.0
        while not watch.final and idle < LINGER_S:
            await asyncio.sleep(self.poll_s)
            idle = idle + self.poll_s if watch.watchers == 0 else 0.0
            if self._read(watch):
                watch.changed.set()
                watch.changed = asyncio.Event()  # the next change wakes those who wait from now on
        if watch.watchers == 0 or watch.final:
            self._watches.pop(watch.run_id, None)

    def _watch(self, run_id: str) -> _Watch:
        watch = self._watches.get(run_id)
        if watch is None:
            watch = self._watches[run_id] = _Watch(run_id)
            self._read(watch)
            if not watch.final:
                watch.task = asyncio.get_running_loop().create_task(self._poll(watch))
        return watch

    def watched(self) -> dict[str, int]:
        """{run id: watchers} of the runs read now."""
        return {run_id: w.watchers for run_id, w in self._watches.items()}

    async def events(self, run_id: str, after: int = 0) -> AsyncIterator[bytes]:
        """The run's stream from record `after` on: status, records, then each change until it ends."""
        watch = self._watch(run_id)
        watch.watchers += 1
        try:
            sent_status = b""
            while True:
                changed = watch.changed
                if watch.gone:
                    yield sse("gone", {})
                    return
                if len(watch.records) > after:
                    yield watch.records_event(after)
                    after = len(watch.records)
                if watch.status_event is not sent_status:  # after the records: a final status ends the stream
                    yield watch.status_event
                    sent_status = watch.status_event
                if watch.final:
                    return
                try:
                    await asyncio.wait_for(changed.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": still here\n\n"
        finally:
            watch.watchers -= 1


_hubs: dict[str, RunFeedHub] = {}


def hub() -> RunFeedHub:
    """The hub of this process's runs folder ($CNN_RUNS_DIR), made on first use."""
    root = str(runs_dir().resolve())
    if root not in _hubs:
        _hubs[root] = RunFeedHub(RunStore(root))
    return _hubs[root]


async def run_events(request: Request) -> Response:
    """GET /api/runs/{run_id}/events[?after=N][&share=T]: the run's live stream; 404 for a run that does not
    exist or that this visitor (the cookie's key, or the share token) may not see — the same answer."""
    run_id = request.path_params["run_id"]
    feeds = hub()
    me = Visitor(key=request.cookies.get(VISITOR_COOKIE), share=request.query_params.get("share"))
    try:
        status = feeds.store.read_status(run_id)
    except (KeyError, OSError, ValueError):
        status = None
    if status is None or not feeds.access.can_read(me, run_id, status):
        return PlainTextResponse(f"No run {run_id}.", status_code=404)
    after = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    start = int(after) if after.isdigit() else 0
    return StreamingResponse(feeds.events(run_id, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def board_events(request: Request) -> Response:
    """GET /api/class/board/events: the class board's stream (ui/board_view.py). Anyone may watch the board of
    the class in progress, as anyone may open the board page; with no class, it says `ended` at once."""
    from ui.board_view import feed

    return StreamingResponse(feed(runs_dir()).events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def routes() -> list[Route]:
    """The extra routes app.py's st.App serves beside Streamlit's own (and a model as a web page: ui/web_export.py)."""
    from ui.web_export import PAGE_ROUTE, web_page_route

    return [Route("/api/runs/{run_id}/events", run_events), Route("/api/class/board/events", board_events),
            Route(PAGE_ROUTE, web_page_route)]


class VisitorCookie:
    """ASGI middleware: a page navigation without the visitor cookie gets one — a new secret key, HttpOnly (no
    script, no link ever sees it), for a year. Locally it identifies nobody until a teacher starts a class."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if VISITOR_COOKIE in request.cookies or "text/html" not in request.headers.get("accept", ""):
            return await self.app(scope, receive, send)  # assets come after the page, with its cookie
        secure = "; Secure" if request.headers.get("x-forwarded-proto", scope.get("scheme")) == "https" else ""
        cookie = f"{VISITOR_COOKIE}={new_key()}; Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000{secure}"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def middleware() -> list[Middleware]:
    return [Middleware(VisitorCookie)]
