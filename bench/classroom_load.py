"""A classroom against the app: headless clients that speak Streamlit's websocket protocol like a browser tab.

    .venv/bin/python bench/classroom_load.py [--watchers 30] [--drawers 10] [--duration 60] [--json out.json]
                                              [--url http://127.0.0.1:8501 --runs-dir runs] [--model lenet5_bn]
                                              [--batch-size 128] [--alone-epochs 1]

No browsers (30 Chromium tabs do not fit 2 cores): each client is a coroutine in ONE asyncio thread that
does what the frontend does on the wire: `GET /<page>`, `/_stcore/health`, `/_stcore/host-config`, then
the websocket `/_stcore/stream` (subprotocol "streamlit"), a BackMsg `rerun_script` with the ClientState
of the page (page_name "train", query_string "run=<id>"; later reruns carry the page_script_hash the
server named, the widget states the client holds and the hashes of the cacheable messages it keeps, so
the server answers those with `ref_hash` references as it does for a browser). It reads ForwardMsgs until
the run's `script_finished`. A ForwardMsg `auto_rerun` (a `run_every` fragment) starts a timer that sends
`rerun_script` with that fragment_id and is_auto_rerun every `interval` seconds, as the frontend's
setInterval does (a full-app run clears the timers; `stop_auto_rerun` clears one).

Roles, all against one server on loopback:
- server: started here (`streamlit run app.py` on a free 127.0.0.1 port, CNN_RUNS_DIR a temp folder,
  CNN_DATA_DIR the data folder), or `--url` of one already running (then `--runs-dir` names its runs folder).
- trainer: presses the Train page's **Train** button through the protocol, with the form's Model, Batch
  size and Epochs set (widget ids read from the page's deltas): first one run of `--alone-epochs` with no
  other client connected ("alone"), then one that outlasts `--duration`, trained while the classroom works
  and cancelled (its **Cancel run** button) at the end. Images/s come from the run's metrics.jsonl.
- watchers: open `/train?run=<id>`, drive the page's fragment auto-reruns (the sidebar status, and any
  other `run_every` fragment the page has), and follow the run's live stream `GET /api/runs/<id>/events`
  (server-sent events: `status`, `records`) as the page's live chart does in the browser, reconnecting
  with Last-Event-ID after a drop as EventSource does. Update gap = time between consecutive `records`
  events after the first (the backlog). An answer that is not text/event-stream (Streamlit serves its
  index page, 200 text/html, for a path it does not route) reads "no live stream endpoint".
- drawers: open `/draw` and every `--draw-every` seconds send a new drawing as the canvas (a components-v2
  component) does: its JSON state {"drawing": {"raw": <fabric JSON>, "data": <PNG data URL>}} for the
  component's widget id. Latency = send → that run's `script_finished`; the run must show the metric
  "Prediction".

Figures: page loads (p50/p95; the three GETs + websocket + the run until script_finished), fragment
reruns (request → finished, per page and interval), live-stream update gaps (pooled, and the per-watcher
p50/p95/max across watchers, beside the gaps between the records the run wrote), drawing latency
(p50/p95), errors (exceptions and st.error messages shown on pages, failed loads, protocol errors,
drawings without a prediction), the server process's RSS (start, before the classroom, peak, end) and
CPU, the same with its child processes (the app trains in worker processes), training images/s alone and
under load, this harness's own CPU and the machine's load average (other processes count in every figure).
Exit status: 0 clean; 1 errors, or a watcher that got no live update (or no live stream endpoint at all);
2 the benchmark could not run (server did not start, the run could not be submitted).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import json
import math
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
from PIL import Image, ImageDraw
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # cnn_core, when run as `python bench/classroom_load.py`
    sys.path.insert(0, str(ROOT))
from cnn_core.runs import ACTIVE, EpochRecord, RunStatus, StepRecord  # noqa: E402 - after the path above
from cnn_core.access import VISITOR_COOKIE  # noqa: E402
from cnn_core.classroom import ClassStore, teacher_token  # noqa: E402
from cnn_core.runs import RunStore  # noqa: E402
from cnn_core.runs import runs_dir as default_runs_dir  # noqa: E402
from cnn_core.runs.records import Record, parse  # noqa: E402

CANVAS = 280  # the Draw page's canvas side
CANVAS_COMPONENT = "streamlit_drawable_canvas"  # a substring of the component's name
FINISHED, COMPILE_ERROR, EARLY_FOR_RERUN, FRAGMENT_FINISHED = (
    ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR, ForwardMsg.FINISHED_EARLY_FOR_RERUN,
    ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY)
CACHE_LIMIT = 400  # cacheable messages a client keeps at most (the browser ages them out by run count)
WIRE: Counter[str] = Counter()  # traffic of all clients: BackMsgs sent, ForwardMsgs and bytes received, …
SERVER_START_S = 180  # a cold start imports torch and plotly; on a busy 2-core machine that takes a while


# ---------------------------------------------------------------- figures


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear between ranks) of values; None when empty."""
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def dist(values: list[float]) -> dict[str, Any]:
    """n, p50, p95, max (seconds, rounded to the ms)."""
    r = (lambda x: None if x is None else round(x, 3))
    return {"n": len(values), "p50": r(percentile(values, 50)), "p95": r(percentile(values, 95)),
            "max": r(max(values)) if values else None}


class Errors:
    """Every error a client saw, by kind, with the distinct messages (first line) and who saw them."""

    KINDS = ("page exception", "page error message", "failed load", "protocol", "drawing without prediction",
             "live stream", "class")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.messages: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, kind: str, who: str, message: str) -> None:
        self.counts[kind] += 1
        first = (message.strip().splitlines() or [""])[0][:300]
        self.messages[kind][first] += 1
        if self.counts[kind] <= 3:  # the first few as they happen; all in the summary
            print(f"  ! {kind} ({who}): {first}", file=sys.stderr, flush=True)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, Any]:
        return {"total": self.total, "by_kind": {k: self.counts.get(k, 0) for k in self.KINDS},
                "messages": {k: dict(m.most_common(10)) for k, m in self.messages.items()}}


class LoadFailed(Exception):
    """A page did not load (timeout, closed connection, page not found)."""


# ---------------------------------------------------------------- plain HTTP and server-sent events


class SSEParser:
    """The text/event-stream format (WHATWG): feed bytes, get complete events (event, data, id), where id is
    the id field of that event itself (None without one); `last_id` is EventSource's lastEventId, which
    persists from event to event and goes back as Last-Event-ID on a reconnect."""

    def __init__(self) -> None:
        self._buf = b""
        self._after_cr = False  # the last chunk ended with CR: an LF starting the next one belongs to it
        self._event, self._data, self._id, self.last_id = "", [], None, None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[str, str, str | None]]:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        self._buf += chunk
        out = []
        while True:
            m = re.search(rb"\r\n|\r|\n", self._buf)
            if m is None:
                return out
            line, self._buf = self._buf[: m.start()].decode("utf-8", "replace"), self._buf[m.end():]
            if line == "":
                if self._data:
                    out.append((self._event or "message", "\n".join(self._data), self._id))
                self._event, self._data, self._id = "", [], None
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id" and "\0" not in value:
                self.last_id = self._id = value
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)


class HttpStatusError(Exception):
    def __init__(self, status: int, content_type: str, body: bytes):
        super().__init__(f"HTTP {status} ({content_type or 'no content type'})")
        self.status, self.content_type, self.body = status, content_type, body


async def _http_open(url: str, headers: dict[str, str], timeout: float
                     ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    """GET url over HTTP/1.1; returns the open stream after the response headers."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 80), timeout)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
                 *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    except BaseException:
        writer.close()
        raise
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    response_headers = {}
    for line in header_lines:
        if ":" in line:
            k, v = line.split(":", 1)
            response_headers[k.strip().lower()] = v.strip()
    return reader, writer, status, response_headers


async def _body_chunks(reader: asyncio.StreamReader, headers: dict[str, str], read_timeout: float):
    """The response body as it arrives: chunked, by content-length, or until the server closes."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), read_timeout)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = await asyncio.wait_for(reader.readexactly(size + 2), read_timeout)
            yield data[:-2]
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await asyncio.wait_for(reader.read(min(left, 65536)), read_timeout)
            if not data:
                return
            left -= len(data)
            yield data
    else:
        while data := await asyncio.wait_for(reader.read(65536), read_timeout):
            yield data


async def http_get(url: str, timeout: float = 30, headers: dict[str, str] | None = None
                   ) -> tuple[int, dict[str, str], bytes]:
    reader, writer, status, headers = await _http_open(url, {"Accept-Encoding": "identity", **(headers or {})},
                                                       timeout)
    try:
        body = b"".join([c async for c in _body_chunks(reader, headers, timeout)])
    finally:
        writer.close()
    return status, headers, body


async def sse_events(url: str, last_event_id: str | None = None, connect_timeout: float = 30,
                     read_timeout: float = 3600, on_open=None, cookie: str | None = None):
    """Yield (event, data, id) from a text/event-stream GET, as EventSource reads it (gzip accepted, as a
    browser sends). Raises HttpStatusError when the answer is not a 200 event stream (a 404, or the app's
    index page that Streamlit serves for any unknown path)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", "Accept-Encoding": "gzip, deflate"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    if cookie:
        headers["Cookie"] = cookie
    reader, writer, status, rh = await _http_open(url, headers, connect_timeout)
    try:
        content_type = rh.get("content-type", "")
        if status != 200 or not content_type.startswith("text/event-stream"):
            body = b""
            with contextlib.suppress(Exception):
                async for chunk in _body_chunks(reader, rh, 5):
                    body += chunk
                    if len(body) > 2000:
                        break
            raise HttpStatusError(status, content_type, body[:2000])
        if on_open is not None:
            on_open()
        encoding = rh.get("content-encoding", "").lower()
        inflate = zlib.decompressobj(31 if encoding == "gzip" else 15) if encoding in ("gzip", "deflate") else None
        parser = SSEParser()
        async for chunk in _body_chunks(reader, rh, read_timeout):
            for event in parser.feed(inflate.decompress(chunk) if inflate else chunk):
                yield event
    finally:
        writer.close()


# ---------------------------------------------------------------- one browser tab


@dataclass
class Run:
    """One script run as a client sees it: from its new_session to its script_finished."""

    run_id: str
    fragment_ids: tuple[str, ...]
    started: float
    finished: float | None = None
    status: int | None = None
    elements: list[tuple[str, str, str]] = field(default_factory=list)  # (type, id, label)
    metrics: dict[str, str] = field(default_factory=dict)  # label → value
    alerts: list[tuple[int, str]] = field(default_factory=list)  # (Alert.Format, body)
    exceptions: list[str] = field(default_factory=list)
    query_string: str | None = None


class Tab:
    """A browser tab on one page of the app, over Streamlit's websocket protocol.

    It imitates the frontend: the first rerun names the page (page_name) with the URL's query string;
    later ones its page_script_hash. Widget values it has set go with every rerun; a trigger (a button
    click) with one only. Cacheable messages are kept and their hashes sent, so the server can answer
    with references. `auto_rerun` starts a timer per fragment (unless follow_auto_reruns is False)."""

    def __init__(self, base_url: str, who: str, errors: Errors, *, follow_auto_reruns: bool = True,
                 cookie: str | None = None):
        self.base_url, self.who, self.errors = base_url.rstrip("/"), who, errors
        self.cookie = cookie  # "cnn_visitor=<key>": the visitor, as the browser's cookie jar keeps it
        self.follow_auto_reruns = follow_auto_reruns
        self.ws = None
        self.page = ""
        self.page_name = ""
        self.page_script_hash = ""
        self.query_string = ""
        self.values: dict[str, WidgetState] = {}
        self.widgets: dict[tuple[str, str], str] = {}  # (element type, label or component name) → widget id
        self.current: Run | None = None
        self.finished: list[Run] = []
        self._changed = asyncio.Event()
        self._cache: dict[str, tuple[ForwardMsg, int]] = {}  # hash → (message, full run count when last used)
        self._full_runs = 0
        self._max_age = 2
        self._timers: dict[str, tuple[float, asyncio.Task]] = {}
        self._pending: dict[str, float] = {}  # fragment id → when its oldest unanswered auto-rerun was sent
        self.fragment_times: dict[str, list[float]] = defaultdict(list)  # "page · run_every Ns" → seconds
        self._intervals: dict[str, float] = {}
        self._reader: asyncio.Task | None = None
        self._closing = False
        self.closed_error: str | None = None

    # ---- connection

    async def open(self, page: str, query_string: str = "", timeout: float = 60) -> float:
        """Load the page as a browser does; returns the seconds from the first request to script_finished."""
        self.page, self.page_name, self.query_string = page, page, query_string
        t0 = time.monotonic()
        deadline = t0 + timeout
        url = f"{self.base_url}/{page}" + (f"?{query_string}" if query_string else "")
        try:
            status, headers, _ = await http_get(url, timeout, {"Accept": "text/html", **self._cookie_header()})
            if status != 200:
                raise LoadFailed(f"GET /{page} answered HTTP {status}")
            set_cookie = headers.get("set-cookie", "")
            if not self.cookie and set_cookie.startswith(f"{VISITOR_COOKIE}="):
                self.cookie = set_cookie.split(";", 1)[0]  # the server's new visitor key, kept as a browser does
            for path in ("/_stcore/health", "/_stcore/host-config"):
                status, _, _ = await http_get(self.base_url + path, timeout, self._cookie_header())
                if status != 200:
                    raise LoadFailed(f"GET {path} answered HTTP {status}")
            ws_url = "ws" + self.base_url[len("http"):] + "/_stcore/stream"
            self.ws = await asyncio.wait_for(
                ws_connect(ws_url, subprotocols=["streamlit"], origin=self.base_url, proxy=None, max_size=None,
                           open_timeout=timeout, user_agent_header="classroom-load",
                           additional_headers=self._cookie_header() or None), timeout)
            if self.ws.subprotocol != "streamlit":
                self.errors.add("protocol", self.who, f"websocket subprotocol {self.ws.subprotocol!r}, "
                                                      "expected 'streamlit'")
            self._reader = asyncio.create_task(self._read(), name=f"read-{self.who}")
            await self.rerun(timeout=deadline - time.monotonic())
        except LoadFailed as e:
            self.errors.add("failed load", self.who, f"/{page}: {e}")
            raise
        except (OSError, asyncio.TimeoutError, ConnectionClosed) as e:
            message = f"/{page}: {type(e).__name__}: {e}" if str(e) else f"/{page}: {type(e).__name__}"
            self.errors.add("failed load", self.who, message)
            raise LoadFailed(message) from e
        return time.monotonic() - t0

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": self.cookie} if self.cookie else {}

    async def close(self) -> None:
        self._closing = True
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    # ---- sending

    def _client_state(self, fragment_id: str = "", auto: bool = False,
                      triggers: tuple[WidgetState, ...] = ()) -> ClientState:
        cs = ClientState(query_string=self.query_string, page_script_hash=self.page_script_hash,
                         page_name="" if self.page_script_hash else self.page_name, fragment_id=fragment_id,
                         is_auto_rerun=auto)
        cs.widget_states.widgets.extend([*self.values.values(), *triggers])
        cs.cached_message_hashes.extend(self._cache)
        ctx = cs.context_info
        ctx.timezone, ctx.timezone_offset, ctx.locale = "UTC", 0, "en-US"
        ctx.url = f"{self.base_url}/{self.page}" + (f"?{self.query_string}" if self.query_string else "")
        ctx.is_embedded, ctx.color_scheme = False, "light"
        return cs

    async def _send(self, cs: ClientState) -> None:
        msg = BackMsg()
        msg.rerun_script.CopyFrom(cs)
        data = msg.SerializeToString()
        WIRE["backmsgs"] += 1
        WIRE["backmsg_bytes"] += len(data)
        await self.ws.send(data)

    async def rerun(self, values: dict[str, WidgetState] | None = None, triggers: tuple[WidgetState, ...] = (),
                    timeout: float = 60) -> Run:
        """Set widget values (kept for later reruns) and fire triggers (this rerun only), rerun the page and
        wait for that full run's script_finished. Raises LoadFailed on timeout or a closed connection."""
        self.values.update(values or {})
        sent = time.monotonic()
        await self._send(self._client_state(triggers=triggers))
        return await self.wait_full_run(sent, timeout)

    async def wait_full_run(self, after: float, timeout: float) -> Run:
        deadline = time.monotonic() + timeout
        while True:
            for run in self.finished:
                if not run.fragment_ids and run.started >= after and run.status in (FINISHED, COMPILE_ERROR):
                    return run
            if self.closed_error:
                raise LoadFailed(self.closed_error)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoadFailed(f"no script_finished within {timeout:.0f} s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # ---- auto-reruns (run_every fragments)

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        old = self._timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return  # the frontend keeps a timer of the same interval running
        if old is not None:
            old[1].cancel()
        self._intervals[fragment_id] = interval
        self._timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    def _stop_timers(self, fragment_ids: list[str] | None = None) -> None:
        for fid in list(self._timers) if fragment_ids is None else fragment_ids:
            entry = self._timers.pop(fid, None)
            if entry is not None:
                entry[1].cancel()
            self._pending.pop(fid, None)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        start = time.monotonic()
        k = 0
        while not self._closing:  # setInterval: a fixed period, whatever the server does meanwhile
            k += 1
            await asyncio.sleep(max(0.0, start + k * interval - time.monotonic()))
            self._pending.setdefault(fragment_id, time.monotonic())
            try:
                await self._send(self._client_state(fragment_id=fragment_id, auto=True))
            except ConnectionClosed:
                return

    # ---- receiving

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                if isinstance(data, str):
                    self.errors.add("protocol", self.who, "a text frame on the websocket (expected binary)")
                    continue
                WIRE["forwardmsgs"] += 1
                WIRE["forwardmsg_bytes"] += len(data)
                msg = ForwardMsg()
                try:
                    msg.ParseFromString(data)
                except Exception as e:  # noqa: BLE001 - any decode failure is a protocol error
                    self.errors.add("protocol", self.who, f"undecodable ForwardMsg: {e}")
                    continue
                self._handle(msg)
        except ConnectionClosed as e:
            if not self._closing:
                self.closed_error = f"websocket closed by the server (code {e.rcvd.code if e.rcvd else '?'})"
                self.errors.add("protocol", self.who, self.closed_error)
        finally:
            if not self._closing and self.closed_error is None:
                self.closed_error = "websocket closed by the server"
                self.errors.add("protocol", self.who, self.closed_error)
            self._changed.set()

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.errors.add("protocol", self.who, f"ref_hash {msg.ref_hash} not in the client's cache")
                return
            self._cache[msg.ref_hash] = (cached[0], self._full_runs)
            WIRE["ref_hash_hits"] += 1
            msg, kind = cached[0], cached[0].WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = (msg, self._full_runs)
            if len(self._cache) > CACHE_LIMIT:
                self._cache.pop(next(iter(self._cache)))
        now = time.monotonic()
        if kind == "new_session":
            ns = msg.new_session
            run = Run(msg.metadata.run.script_run_id, tuple(msg.metadata.run.fragment_ids), now)
            if not run.fragment_ids:
                self._stop_timers()  # the frontend's cleanupAutoReruns: a full run registers its timers again
            if ns.page_script_hash and not self.page_script_hash:
                self.page_script_hash = ns.page_script_hash
            if ns.config.max_cached_message_age:
                self._max_age = ns.config.max_cached_message_age
            self.current = run
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
            if self.current is not None:
                self.current.query_string = self.query_string
        elif kind == "page_not_found":
            self.errors.add("failed load", self.who, f"page not found: {msg.page_not_found.page_name or self.page}")
        elif kind == "auto_rerun":
            if self.follow_auto_reruns and msg.auto_rerun.fragment_id:
                self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_timers(list(msg.stop_auto_rerun.fragment_ids))
        elif kind == "delta":
            self._delta(msg)
        elif kind == "session_event":
            if msg.session_event.HasField("script_compilation_exception"):
                e = msg.session_event.script_compilation_exception
                self.errors.add("page exception", self.who, f"/{self.page}: {e.type}: {e.message}")
        elif kind == "script_finished":
            self._finish(msg.script_finished, now)

    def _delta(self, msg: ForwardMsg) -> None:
        delta = msg.delta
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        etype = element.WhichOneof("type")
        if etype is None:
            return
        proto = getattr(element, etype)
        run = self.current
        if etype == "exception":
            text = f"/{self.page}: {proto.type}: {proto.message}"
            if proto.is_warning:
                print(f"  (warning shown, {self.who}) {text[:200]}", file=sys.stderr)
            else:
                self.errors.add("page exception", self.who, text)
                if run is not None:
                    run.exceptions.append(text)
            return
        if etype == "alert":
            if proto.format == Alert.ERROR:
                self.errors.add("page error message", self.who, f"/{self.page}: {proto.body}")
            if run is not None:
                run.alerts.append((proto.format, proto.body))
        label = getattr(proto, "label", "") if hasattr(proto, "label") else ""
        if etype == "bidi_component":
            label = proto.component_name
        widget_id = getattr(proto, "id", "") if hasattr(proto, "id") else ""
        if widget_id:
            self.widgets[(etype, label)] = widget_id
        if run is not None:
            run.elements.append((etype, widget_id, label))
            if etype == "metric":
                run.metrics[label] = proto.body

    def _finish(self, finished: int, now: float) -> None:
        run = self.current
        if run is None:
            run = Run("", (), now)
        run.finished, run.status = now, finished
        self.current = None
        self.finished.append(run)
        if len(self.finished) > 50:
            del self.finished[:25]
        if run.fragment_ids:
            for fid in run.fragment_ids:
                sent = self._pending.pop(fid, None)
                if sent is not None:
                    interval = self._intervals.get(fid, 0)
                    self.fragment_times[f"{self.page or 'home'} · run_every {interval:g}s"].append(now - sent)
        elif finished != EARLY_FOR_RERUN:
            self._pending.clear()  # a full run reran every fragment; the timers start again
            self._full_runs += 1
            stale = [h for h, (_, used) in self._cache.items() if self._full_runs - used > self._max_age + 1]
            for h in stale:
                del self._cache[h]
        self._changed.set()

    def widget(self, etype: str, label: str) -> str:
        """The id of the page's widget of this type whose label (or component name) contains `label`."""
        for (t, lab), wid in self.widgets.items():
            if t == etype and (lab == label or label in lab):
                return wid
        raise LoadFailed(f"no {etype} {label!r} on /{self.page} (saw: "
                         f"{sorted({f'{t}:{lab}' for t, lab in self.widgets})})")


def string_value(wid: str, value: str) -> WidgetState:
    return WidgetState(id=wid, string_value=value)


def double_value(wid: str, value: float) -> WidgetState:
    return WidgetState(id=wid, double_value=value)


def json_value(wid: str, value: Any) -> WidgetState:
    return WidgetState(id=wid, json_value=json.dumps(value))


def trigger(wid: str) -> WidgetState:
    return WidgetState(id=wid, trigger_value=True)


# ---------------------------------------------------------------- drawings


STROKES = {  # polylines in a 0-1 box, drawn 20 px wide: what a student draws for these digits
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.3, 0.2), (0.7, 0.2), (0.45, 0.85)]],
    "4": [[(0.6, 0.85), (0.6, 0.15), (0.25, 0.6), (0.75, 0.6)]],
    "0": [[(0.5, 0.15), (0.3, 0.3), (0.3, 0.7), (0.5, 0.85), (0.7, 0.7), (0.7, 0.3), (0.5, 0.15)]],
    "2": [[(0.3, 0.3), (0.5, 0.15), (0.7, 0.3), (0.3, 0.85), (0.72, 0.85)]],
    "L": [[(0.35, 0.15), (0.35, 0.8), (0.7, 0.8)]],
}


def _fabric_path(points: list[tuple[float, float]], width: int = 18) -> dict[str, Any]:
    """A fabric.js Path object as the canvas's raw JSON holds it (the page only reads the PNG)."""
    pts = [(x * CANVAS, y * CANVAS) for x, y in points]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return {"type": "Path", "version": "6.0.0", "originX": "left", "originY": "top", "left": min(xs), "top": min(ys),
            "width": max(xs) - min(xs), "height": max(ys) - min(ys), "fill": None, "stroke": "#FFFFFF",
            "strokeWidth": width, "strokeLineCap": "round", "strokeLineJoin": "round",
            "path": [["M", *pts[0]], *(["L", *p] for p in pts[1:])]}


def _png_data_url(rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def canvas_state(rgba: np.ndarray, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The canvas component's state after a stroke: setStateValue("drawing", {raw, data})."""
    return {"drawing": {"raw": {"version": "6.0.0", "objects": objects, "background": "#000000"},
                        "data": _png_data_url(rgba)}}


def synthetic_drawings() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, strokes in STROKES.items():
        img = Image.new("L", (CANVAS, CANVAS), 0)
        draw = ImageDraw.Draw(img)
        for stroke in strokes:
            draw.line([(x * CANVAS, y * CANVAS) for x, y in stroke], fill=255, width=20, joint="curve")
        gray = np.asarray(img)
        rgba = np.dstack([gray, gray, gray, np.full_like(gray, 255)])
        out.append((f"stroke {name}", canvas_state(rgba, [_fabric_path(s) for s in strokes])))
    return out


def mnist_drawings(data_dir: Path, n: int = 10) -> list[tuple[str, dict[str, Any]]]:
    """The first test digit of each class, upscaled to the canvas with the app's own upscale_digit."""
    from cnn_core.data import locate, read_idx
    from cnn_core.drawing import upscale_digit

    folder = data_dir / "mnist"
    images_path, labels_path = locate(folder, "t10k-images-idx3-ubyte"), locate(folder, "t10k-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        return []
    images, labels = read_idx(images_path), read_idx(labels_path)
    out = []
    for k in range(10):
        idx = np.flatnonzero(labels == k)
        if len(idx) and len(out) < n:
            outline = [(0.3, 0.2), (0.7, 0.2), (0.7, 0.8), (0.3, 0.8)]  # stands in for the strokes
            out.append((f"mnist {k}", canvas_state(upscale_digit(images[idx[0]]), [_fabric_path(outline)])))
    return out


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (bytes) and CPU ticks (user+system of all its threads; `cpu_children`: of its children that
    have exited) of a process; {} when it is gone."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "VmRSS":
                out[key] = int(value.split()[0]) * 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_ticks"] = int(fields[11]) + int(fields[12])
        out["cpu_children"] = int(fields[13]) + int(fields[14])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot): with its pid, who it is; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """The live child processes of pid, and theirs (the app trains in worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    kids = [int(k) for k in (task / "children").read_text().split()]
                    out += kids
                    todo += kids
    return out


def snapshot(pid: int | None) -> dict[str, Any]:
    """The server process's RSS and CPU ticks, and those of its whole tree (plus the training workers)."""
    main = proc_status(pid) if pid else {}
    if "VmRSS" not in main:  # gone, or a zombie (no memory left to count)
        return {}
    kids = {k: proc_status(k) for k in descendants(pid)}
    kids = {k: v for k, v in kids.items() if "VmRSS" in v}
    return {"rss": main["VmRSS"], "cpu": main["cpu_ticks"],
            "tree_rss": main["VmRSS"] + sum(v["VmRSS"] for v in kids.values()),
            "tree_cpu": main["cpu_ticks"] + main["cpu_children"] + sum(v["cpu_ticks"] for v in kids.values()),
            "children": sorted(kids)}


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1:port (a server we did not start), when /proc tells."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(cols[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return int(proc.name)
    return None


class Server:
    """`streamlit run app.py` on a free loopback port, with its own runs folder."""

    def __init__(self, runs_dir: Path, data_dir: Path, log: Path, checkpoints_dir: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.runs_dir, self.data_dir, self.log = runs_dir, data_dir, log
        self.checkpoints_dir = checkpoints_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "CNN_RUNS_DIR": str(self.runs_dir), "CNN_DATA_DIR": str(self.data_dir),
               "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        if self.checkpoints_dir is not None:
            env["CNN_CHECKPOINTS_DIR"] = str(self.checkpoints_dir)
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                   "--server.port", str(self.port), "--server.address", "127.0.0.1",
                   "--browser.gatherUsageStats", "false",
                   "--server.fileWatcherType", "none"]  # a snapshot of the code: others' edits must not rerun pages
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(b"GET /_stcore/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    if b"ok" in s.recv(4096).split(b"\r\n\r\n", 1)[-1]:
                        return
            time.sleep(0.3)
        raise RuntimeError(f"the server was not healthy after {SERVER_START_S} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def stop(self) -> None:
        """Stop the server, then any process it started that outlived it (a training worker)."""
        if self.process is None or self.process.poll() is not None:
            return
        kids = {k: _start_time(k) for k in descendants(self.process.pid)}
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            # the same process (start time), not a pid the system gave to another one since
            alive = [k for k, t in kids.items() if t is not None and _start_time(k) == t]
            for k in alive:
                with contextlib.suppress(OSError):
                    os.kill(k, sig)
            deadline = time.monotonic() + 5
            while alive and time.monotonic() < deadline:
                time.sleep(0.1)
                alive = [k for k in alive if _start_time(k) == kids[k]]
            if not alive:
                return

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


# ---------------------------------------------------------------- the runs folder


def read_status(runs_dir: Path, run_id: str) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((runs_dir / run_id / "status.json").read_text())
    return None


def read_records(runs_dir: Path, run_id: str) -> list[Record]:
    out = []
    with contextlib.suppress(OSError):
        for line in (runs_dir / run_id / "metrics.jsonl").read_text().splitlines():
            try:
                out.append(parse(json.loads(line)))
            except ValueError:
                break
    return out


async def wait_status(runs_dir: Path, run_id: str, done, timeout: float, what: str) -> dict[str, Any]:
    """Poll status.json until done(status) holds; raises RuntimeError after timeout."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status = read_status(runs_dir, run_id)
        if status is not None and done(status):
            return status
        await asyncio.sleep(0.5)
    raise RuntimeError(f"run {run_id}: {what} not reached within {timeout:.0f} s (status: {status})")


def images_per_s(records: list[Record], batch_size: int, started: float | None,
                 window: tuple[float, float] | None = None, metrics_every: int | None = None) -> dict[str, Any]:
    """Training speed of a run: its epoch records' images_per_s (those whole epochs inside `window`, wall
    clock, when given), and from its step records (steps x batch / seconds between the first and last
    step record inside the window; validation at an epoch's end counts in those seconds). With fewer than
    two step records in the window, `below`: the speed it must have been under."""
    out: dict[str, Any] = {"epochs": [], "from_steps": None}
    if started is None:
        return out
    wall = (lambda r: started + r.time)
    epoch_start = started
    for r in records:
        if isinstance(r, EpochRecord):
            if window is None or (epoch_start >= window[0] and wall(r) <= window[1]):
                out["epochs"].append({"epoch": r.epoch, "images_per_s": round(r.images_per_s, 1)})
            epoch_start = wall(r)
    steps = [r for r in records if isinstance(r, StepRecord) and (window is None or window[0] <= wall(r) <= window[1])]
    if len(steps) >= 2 and steps[-1].time > steps[0].time:
        n_images = (steps[-1].step - steps[0].step) * batch_size
        out["from_steps"] = round(n_images / (steps[-1].time - steps[0].time), 1)
        out["step_window_s"] = round(steps[-1].time - steps[0].time, 1)
    elif window is not None and metrics_every:
        # under 2 records in the window: it trained fewer than 2 x metrics_every steps in that time
        out["below"] = round(2 * metrics_every * batch_size / (window[1] - window[0]), 1)
    return out


# ---------------------------------------------------------------- roles


async def submit_run(base_url: str, errors: Errors, model: str, batch_size: int, epochs: int,
                     timeout: float = 120, *, cookie: str | None = None, who: str = "trainer",
                     presses: list[float] | None = None) -> str:
    """Press Train on the Train page with the form's Model, Batch size and Epochs set; returns the run id
    (the page puts it in the URL: page_info_changed ?run=<id>). `presses` gets the seconds from the click to
    its finished rerun."""
    tab = Tab(base_url, who, errors, follow_auto_reruns=False, cookie=cookie)
    try:
        await tab.open("train", timeout=timeout)
        model_id, batch_id = tab.widget("selectbox", "Model"), tab.widget("selectbox", "Batch size")
        epochs_id = tab.widget("number_input", "Epochs")
        # the form as set by hand, then the click in a rerun of its own (the button's id may change)
        await tab.rerun({model_id: string_value(model_id, model), batch_id: string_value(batch_id, str(batch_size)),
                         epochs_id: double_value(epochs_id, epochs)}, timeout=timeout)
        sent = time.monotonic()
        run = await tab.rerun(triggers=(trigger(tab.widget("button", "Train")),), timeout=timeout)
        if presses is not None:
            presses.append(run.finished - sent)
        run_id = (parse_qs(run.query_string or tab.query_string).get("run") or [None])[0]
        if not run_id:
            raise RuntimeError(f"pressing Train gave no ?run=<id> (query string {tab.query_string!r}; "
                               f"errors so far: {errors.summary()['messages']})")
        return run_id
    finally:
        await tab.close()


async def cancel_run(base_url: str, errors: Errors, run_id: str, timeout: float = 60) -> bool:
    """Press the run's Cancel button on /train?run=<id>; False when the page shows none (run ended)."""
    tab = Tab(base_url, "trainer", errors, follow_auto_reruns=False)
    try:
        await tab.open("train", f"run={run_id}", timeout=timeout)
        try:
            button = tab.widget("button", "Cancel run")
        except LoadFailed:
            return False
        await tab.rerun(triggers=(trigger(button),), timeout=timeout)
        return True
    finally:
        await tab.close()


@dataclass
class WatcherResult:
    who: str
    page: str = "train"
    load_s: float | None = None
    records_events: int = 0
    status_events: int = 0
    gaps: list[float] = field(default_factory=list)
    stream: str = "not started"  # "open", "ended after the final status", "closed early", "missing: …", "error: …"
    reconnects: int = 0
    events_without_id: Counter = field(default_factory=Counter)
    other_events: Counter = field(default_factory=Counter)
    fragment_times: dict[str, list[float]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)


async def follow_stream(base_url: str, run_id: str, result: WatcherResult, errors: Errors, end: float,
                        cookie: str | None = None) -> None:
    """Read the run's live stream until it ends after the final status, or until `end`; reconnect with
    Last-Event-ID after a drop, as EventSource does."""
    url = f"{base_url}/api/runs/{quote(run_id)}/events"
    last_id: str | None = None
    last_records: float | None = None
    final = False
    while time.monotonic() < end and not final:
        retry_s = 3.0
        try:
            def opened() -> None:
                result.stream = "open"

            async for event, data, event_id in sse_events(url, last_id, read_timeout=max(0.1, end - time.monotonic()),
                                                          on_open=opened, cookie=cookie):
                now = time.monotonic()
                if now > end:
                    return
                last_id = event_id if event_id is not None else last_id
                if event_id is None:
                    result.events_without_id[event] += 1
                    if event == "records":  # a reconnect resumes from the last records id: it must have one
                        errors.add("protocol", result.who, "live stream: a records event without an id")
                try:
                    payload = json.loads(data)
                except ValueError:
                    errors.add("protocol", result.who, f"live stream: {event} data is not JSON: {data[:80]!r}")
                    continue
                if event == "records":
                    if not isinstance(payload, list):
                        errors.add("protocol", result.who, f"live stream: records data is a "
                                                           f"{type(payload).__name__}, not a list")
                    if last_records is not None:
                        result.gaps.append(now - last_records)
                    last_records = now
                    result.records_events += 1
                elif event == "status":
                    result.status_events += 1
                    if isinstance(payload, dict) and payload.get("status") not in ACTIVE:
                        final = True
                elif event == "gone":
                    errors.add("live stream", result.who, "live stream: the run is gone (deleted)")
                    final = True
                else:
                    result.other_events[event] += 1
            if final:
                result.stream = "ended after the final status"
                return
            else:  # the server closed the stream while the run is active: EventSource reconnects
                result.reconnects += 1
                result.stream = "closed early"
        except HttpStatusError as e:
            html = "text/html" in e.content_type or not e.body.strip()
            if html and e.status in (200, 404):  # Streamlit answers an unknown path with its index page
                result.stream = (f"missing: GET /api/runs/<id>/events answered HTTP {e.status} "
                                 f"{e.content_type or '(no content type)'}, not text/event-stream")
                return
            result.stream = f"error: {e}"
            errors.add("live stream", result.who, f"GET /api/runs/<id>/events: {e}: "
                                                  f"{e.body[:200].decode('utf-8', 'replace')}")
            return  # EventSource fails for good on a non-200 answer
        except asyncio.TimeoutError:
            if result.stream == "open":
                return  # no event before the end of the benchmark: the read timeout is the end
            result.stream = "error: no response"
            errors.add("live stream", result.who, "GET /api/runs/<id>/events: no response")
            return
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            result.reconnects += 1
            result.stream = f"dropped: {type(e).__name__}: {e}"
        await asyncio.sleep(min(retry_s, max(0.0, end - time.monotonic())))


async def watcher(base_url: str, run_id: str, who: str, errors: Errors, start: float, end: float,
                  load_timeout: float, reload_every: float) -> WatcherResult:
    result = WatcherResult(who)
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    tab = Tab(base_url, who, errors)
    stream = asyncio.create_task(follow_stream(base_url, run_id, result, errors, end))
    loads = result.loads
    try:
        while time.monotonic() < end:
            try:
                timeout = max(1.0, min(load_timeout, end - time.monotonic()))
                loads.append(await tab.open("train", f"run={run_id}", timeout=timeout))
            except LoadFailed:
                break
            run = tab.finished[-1] if tab.finished else None
            if run is not None and any(run_id in body and "no run" in body.lower() for _, body in run.alerts):
                errors.add("failed load", who, f"/train?run={run_id} says there is no such run")
            until = end if reload_every <= 0 else min(end, time.monotonic() + reload_every)
            while time.monotonic() < until and tab.closed_error is None:
                await asyncio.sleep(min(0.5, max(0.0, until - time.monotonic())))
            if reload_every <= 0 or tab.closed_error is not None:
                break
            await tab.close()
            merged = tab.fragment_times
            tab = Tab(base_url, who, errors)
            tab.fragment_times = merged
    finally:
        await tab.close()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(stream, max(0.1, end - time.monotonic() + 2))
        if not stream.done():
            stream.cancel()
    result.load_s = loads[0] if loads else None
    result.fragment_times = dict(tab.fragment_times)
    return result


@dataclass
class DrawerResult:
    who: str
    loads: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    predictions: Counter = field(default_factory=Counter)
    without_prediction: int = 0
    fragment_times: dict[str, list[float]] = field(default_factory=dict)
    shares: list[float] = field(default_factory=list)  # "Share with the class": press → finished rerun


async def drawer(base_url: str, who: str, errors: Errors, start: float, end: float, drawings, every: float,
                 load_timeout: float, rng: random.Random, *, cookie: str | None = None,
                 share_every: int = 0) -> DrawerResult:
    """A student on /draw sending a drawing every few seconds; with `share_every`, every share_every-th
    prediction is shared with the class (the button under it)."""
    result = DrawerResult(who)
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    tab = Tab(base_url, who, errors, cookie=cookie)
    try:
        try:
            result.loads.append(await tab.open("draw", timeout=max(1.0, min(load_timeout, end - time.monotonic()))))
            canvas = tab.widget("bidi_component", CANVAS_COMPONENT)
        except LoadFailed as e:
            if "no bidi_component" in str(e):
                errors.add("failed load", who, str(e))
            return result
        while True:
            pause = every * rng.uniform(0.7, 1.3)
            if time.monotonic() + pause >= end:
                break
            await asyncio.sleep(pause)
            name, state = drawings[rng.randrange(len(drawings))]
            sent = time.monotonic()
            try:
                run = await tab.rerun({canvas: json_value(canvas, state)}, timeout=max(1.0, end + 30 - sent))
            except LoadFailed as e:
                errors.add("failed load", who, f"/draw after a drawing: {e}")
                break
            result.latencies.append(run.finished - sent)
            if "Prediction" in run.metrics:
                result.predictions[run.metrics["Prediction"]] += 1
            elif not run.exceptions:  # an exception is counted already
                result.without_prediction += 1
                errors.add("drawing without prediction", who, f"{name}: the run finished without the "
                                                              "'Prediction' metric")
            if share_every and "Prediction" in run.metrics and len(result.latencies) % share_every == 0:
                try:
                    sent = time.monotonic()
                    shared = await tab.rerun(triggers=(trigger(tab.widget("button", "Share with the class")),),
                                             timeout=max(1.0, end + 30 - sent))
                    result.shares.append(shared.finished - sent)
                except LoadFailed as e:
                    errors.add("class", who, f"sharing a drawing: {e}")
            with contextlib.suppress(Exception):
                canvas = tab.widget("bidi_component", CANVAS_COMPONENT)
    finally:
        await tab.close()
        result.fragment_times = dict(tab.fragment_times)
    return result


# ---------------------------------------------------------------- a class (--class)


async def start_class(base_url: str, errors: Errors, token: str, runs_at_once: int, timeout: float
                      ) -> tuple[str | None, float]:
    """The teacher opens the teacher link (the token in ?teacher=), sets "Runs training at once" and presses
    "Start the class"; returns the teacher's cookie and the seconds from the press to its finished rerun."""
    tab = Tab(base_url, "teacher", errors, follow_auto_reruns=False)
    try:
        await tab.open("class", f"teacher={quote(token)}", timeout=timeout)
        at_once = tab.widget("number_input", "Runs training at once")
        await tab.rerun({at_once: double_value(at_once, runs_at_once)}, timeout=timeout)
        sent = time.monotonic()
        run = await tab.rerun(triggers=(trigger(tab.widget("button", "Start the class")),), timeout=timeout)
        return tab.cookie, run.finished - sent
    finally:
        await tab.close()


async def join_class(base_url: str, who: str, name: str, errors: Errors, timeout: float) -> tuple[str | None, float]:
    """A student opens /class, types a name and presses Join; returns their cookie (the student, from now on)
    and the seconds from the press to its finished rerun. The page must greet them by that name."""
    tab = Tab(base_url, who, errors, follow_auto_reruns=False)
    try:
        await tab.open("class", timeout=timeout)
        box = tab.widget("text_input", "Your name for the class")
        await tab.rerun({box: string_value(box, name)}, timeout=timeout)
        sent = time.monotonic()
        run = await tab.rerun(triggers=(trigger(tab.widget("button", "Join")),), timeout=timeout)
        if not any(fmt == Alert.SUCCESS and name in body for fmt, body in run.alerts):
            errors.add("class", who, f"pressed Join as {name!r}: the page did not greet them by that name")
        return tab.cookie, run.finished - sent
    finally:
        await tab.close()


async def put_on_projector(base_url: str, cookie: str | None, run_id: str, errors: Errors, timeout: float) -> None:
    """The teacher presses "Put on the projector" on /train?run=<id>."""
    tab = Tab(base_url, "teacher", errors, follow_auto_reruns=False, cookie=cookie)
    try:
        await tab.open("train", f"run={run_id}", timeout=timeout)
        await tab.rerun(triggers=(trigger(tab.widget("button", "Put on the projector")),), timeout=timeout)
    finally:
        await tab.close()


async def end_class(base_url: str, cookie: str | None, errors: Errors, timeout: float) -> float:
    """The teacher presses "End the class" (its runs cancelled and archived); the seconds to its finished rerun."""
    tab = Tab(base_url, "teacher", errors, follow_auto_reruns=False, cookie=cookie)
    try:
        await tab.open("class", timeout=timeout)
        sent = time.monotonic()
        run = await tab.rerun(triggers=(trigger(tab.widget("button", "End the class")),), timeout=timeout)
        return run.finished - sent
    finally:
        await tab.close()


async def follow_board(base_url: str, result: WatcherResult, errors: Errors, end: float, cookie: str | None) -> None:
    """Read the class board's stream until `end`, as the board page's component does: `board` events (the
    whole board, on connect and on each change) counted in records_events, the gaps between them in gaps."""
    last: float | None = None
    try:
        async for event, data, _ in sse_events(f"{base_url}/api/class/board/events",
                                               read_timeout=max(0.1, end - time.monotonic()), cookie=cookie):
            now = time.monotonic()
            if now > end:
                return
            if event == "board":
                try:
                    json.loads(data)
                except ValueError:
                    errors.add("protocol", result.who, f"board stream: data is not JSON: {data[:80]!r}")
                if last is not None:
                    result.gaps.append(now - last)
                last = now
                result.records_events += 1
            elif event == "ended":
                errors.add("live stream", result.who, "board stream: the class ended during the benchmark")
                return
        result.stream = "closed early"
    except HttpStatusError as e:
        result.stream = f"error: {e}"
        errors.add("live stream", result.who, f"GET /api/class/board/events: {e}")
    except asyncio.TimeoutError:
        pass  # the end of the benchmark
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        result.stream = f"dropped: {type(e).__name__}: {e}"
        errors.add("live stream", result.who, f"board stream dropped: {e}")


async def page_watcher(base_url: str, page: str, query: str, who: str, cookie: str | None, errors: Errors,
                       start: float, end: float, load_timeout: float) -> WatcherResult:
    """A tab that stays on a page until `end`, driving its run_every fragments; on the class board, it also
    follows the board's stream (records_events: board updates)."""
    result = WatcherResult(who, page=page, stream="open" if page == "board" else "(not a stream watcher)")
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    tab = Tab(base_url, who, errors, cookie=cookie)
    stream = None
    try:
        with contextlib.suppress(LoadFailed):
            result.loads.append(await tab.open(page, query, timeout=max(1.0, min(load_timeout, end - time.monotonic()))))
            if page == "board":
                stream = asyncio.create_task(follow_board(base_url, result, errors, end, cookie))
            while time.monotonic() < end and tab.closed_error is None:
                await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))
    finally:
        await tab.close()
        if stream is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(stream, 5)
        result.fragment_times = dict(tab.fragment_times)
    result.load_s = result.loads[0] if result.loads else None
    return result


@dataclass
class TrainerResult:
    who: str
    watching: WatcherResult
    runs: list[str] = field(default_factory=list)
    presses: list[float] = field(default_factory=list)


async def class_trainer(base_url: str, runs_dir: Path, who: str, cookie: str | None, errors: Errors, opts: Options,
                        start: float, end: float, on_run=None) -> TrainerResult:
    """A student who trains: keeps one run training and one waiting (the class's per-student limit), and
    watches the oldest on /train?run=<id> with its live stream until it ends, then presses Train again."""
    result = TrainerResult(who, WatcherResult(who))
    w = result.watching
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    while time.monotonic() < end - 5:
        active = [r for r in result.runs if (read_status(runs_dir, r) or {}).get("status") in ACTIVE]
        try:
            while len(active) < 2 and time.monotonic() < end - 5:
                run_id = await submit_run(base_url, errors, opts.model, opts.batch_size, opts.student_epochs,
                                          timeout=opts.load_timeout, cookie=cookie, who=who, presses=result.presses)
                result.runs.append(run_id)
                active.append(run_id)
                if on_run is not None:
                    await on_run(run_id)
        except (LoadFailed, RuntimeError) as e:  # counted; the student tries again, as one would
            errors.add("class", who, f"pressing Train: {e}")
            await asyncio.sleep(2)
            continue
        if not active:
            break
        tab = Tab(base_url, who, errors, cookie=cookie)
        try:
            w.loads.append(await tab.open("train", f"run={active[0]}",
                                          timeout=max(1.0, min(opts.load_timeout, end - time.monotonic()))))
            w.stream = "not started"
            await follow_stream(base_url, active[0], w, errors, end, cookie=cookie)
        except LoadFailed:  # counted; the student reloads
            await asyncio.sleep(2)
        finally:
            await tab.close()
            for k, v in tab.fragment_times.items():
                w.fragment_times.setdefault(k, []).extend(v)
    w.load_s = w.loads[0] if w.loads else None
    return result


def fairness(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """From the class's runs (owner, created, turn: when the queue gave it a slot, started, ended): how long runs
    waited, and the most turns one other student took while a student's next run was due — from when it was
    created or their previous run ended (one training at a time per student), whichever came later, to its
    turn. Round-robin between students: at most 1. (A turn, not the start: a worker process that is starting
    up delays the start, not the order.)"""
    never = math.inf
    at = (lambda r, key: never if r.get(key) is None else r[key])  # not yet given / ended: never
    given = [r for r in runs if r.get("turn") is not None]
    waits = [r["started"] - r["created"] for r in runs if r.get("started") is not None and r.get("created") is not None]
    most = 0
    for r in runs:
        if r.get("created") is None:
            continue
        until = at(r, "turn")
        previous = [at(o, "ended") for o in given if o["owner"] == r["owner"] and o is not r and o["turn"] < until]
        due = max([r["created"], *previous])
        taken = Counter(o["owner"] for o in given if o["owner"] != r["owner"] and due <= o["turn"] < until)
        most = max(most, max(taken.values(), default=0))
    order = [r["name"] for r in sorted(given, key=lambda r: r["turn"])]
    return {"queue_wait": dist(waits), "most_turns_of_another_while_waiting": most, "start_order": order[:40]}


def class_runs(runs_dir: Path, class_id: str) -> list[dict[str, Any]]:
    """The class's runs as the folder has them: owner, name, status, created, started, ended."""
    out = []
    for run in RunStore(runs_dir).list():
        if run.meta.get("class") != class_id:
            continue
        st = run.status
        final = RunStatus.parse(st.get("status")).is_final
        out.append({"run": run.id, "owner": st.get("owner"), "name": run.meta.get("name") or "?",
                    "status": st.get("status"), "created": st.get("created"),
                    "turn": st.get("dispatched") or st.get("started"), "started": st.get("started"),
                    "ended": (st.get("finished") or st.get("updated")) if final else None})
    return out


async def class_session(opts: Options, base_url: str, runs_dir: Path, pid: int | None, errors: Errors,
                        rss: RSSSampler, at_start: dict[str, Any], alone: dict[str, Any], drawings
                        ) -> dict[str, Any]:
    """The class: the teacher starts it, thirty students join by name, `--trainers` of the watchers train in
    fair turns and watch their runs live, the other watchers keep the class board open, the drawers draw and
    share; the teacher projects the first run, keeps the projector view open, and ends the class at the end."""
    report: dict[str, Any] = {}
    token = opts.teacher_token or teacher_token(runs_dir)
    teacher, started_s = await start_class(base_url, errors, token, opts.runs_at_once, opts.load_timeout)
    room = ClassStore(runs_dir).current()
    if room is None:
        raise RuntimeError("pressing 'Start the class' with the teacher link started no class")
    n = opts.watchers + opts.drawers
    log(opts, f"class {room.id} started ({started_s:.2f} s); {n} students join …")
    rng = random.Random(opts.seed)
    names = [f"Student {i + 1:02d}" for i in range(n)]

    async def join(i: int) -> tuple[str | None, float | None]:
        await asyncio.sleep(rng.uniform(0, opts.ramp))
        try:
            return await join_class(base_url, f"student {i + 1}", names[i], errors, opts.load_timeout)
        except LoadFailed:
            return None, None

    joined = await asyncio.gather(*(join(i) for i in range(n)))
    room = ClassStore(runs_dir).current()
    cookies = [c for c, _ in joined]
    report["class"] = {"id": room.id, "start_press_s": round(started_s, 3), "students": n,
                       "joined": len(room.students), "join_press": dist([t for _, t in joined if t is not None]),
                       "runs_at_once": opts.runs_at_once, "student_epochs": opts.student_epochs}
    if len(room.students) != n:
        errors.add("class", "harness", f"{len(room.students)} of {n} students are in class.json after joining")

    rss_before = rss.sample()
    window_start, wall_start = time.monotonic(), time.time()
    load_before, harness_before = os.getloadavg(), harness_cpu_s()
    end = window_start + opts.duration
    n_trainers = min(opts.trainers, opts.watchers)
    log(opts, f"class at work: {n_trainers} students training, {opts.watchers - n_trainers} on the board, "
              f"{opts.drawers} drawing, the teacher's projector view, for {opts.duration:g} s …")
    sampler = asyncio.create_task(rss.run())
    projected: list[str] = []

    async def first_run(run_id: str) -> None:  # the teacher puts the class's first run on the projector
        if not projected:
            projected.append(run_id)
            with contextlib.suppress(LoadFailed):
                await put_on_projector(base_url, teacher, run_id, errors, opts.load_timeout)

    ramp = (lambda: window_start + rng.uniform(0, opts.ramp))
    tasks = [class_trainer(base_url, runs_dir, f"student {i + 1}", cookies[i], errors, opts, ramp(), end, first_run)
             for i in range(n_trainers)]
    tasks += [page_watcher(base_url, "board", "", f"student {i + 1}", cookies[i], errors, ramp(), end,
                           opts.load_timeout) for i in range(n_trainers, opts.watchers)]
    tasks += [drawer(base_url, f"student {i + 1}", errors, ramp(), end, drawings, opts.draw_every, opts.load_timeout,
                     random.Random(opts.seed + 1 + i), cookie=cookies[i], share_every=opts.share_every)
              for i in range(opts.watchers, n)]
    tasks.append(page_watcher(base_url, "board", "view=projector", "projector", teacher, errors, ramp(), end,
                              opts.load_timeout))
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                     opts.duration + opts.load_timeout + 180)
    window_end, wall_end = time.monotonic(), time.time()
    report["load_average"] = {"before": [round(x, 2) for x in load_before],
                              "after": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count()}
    report["harness_class_cores"] = round((harness_cpu_s() - harness_before) / (window_end - window_start), 2)
    sampler.cancel()
    for r in results:
        if isinstance(r, BaseException):
            errors.add("protocol", "harness", f"a client crashed: {type(r).__name__}: {r}")
    trainers = [r for r in results if isinstance(r, TrainerResult)]
    boards = [r for r in results if isinstance(r, WatcherResult)]
    drawers = [r for r in results if isinstance(r, DrawerResult)]
    server_after = snapshot(pid)
    streams = [t.watching for t in trainers]
    report.update(client_figures([*streams, *boards], drawers, streams, errors))
    on_board = [b for b in boards if b.page == "board"]
    report["board_stream"] = {"watchers": len(on_board),
                              "without_update": [b.who for b in on_board if b.records_events < 2],
                              "updates": dist([b.records_events for b in on_board]),
                              "gaps": dist([g for b in on_board for g in b.gaps])}
    presses = [x for t in trainers for x in t.presses]
    shares = [x for d in drawers for x in d.shares]
    report["class"].update(
        train_press=dist(presses), share_press=dist(shares), projected=projected[:1],
        interactions=dist([*presses, *shares, *[x for d in drawers for x in d.latencies],
                           *[t for _, t in joined if t is not None]]))

    # ---- the teacher ends the class: every run cancelled and archived, the board cleared
    runs = class_runs(runs_dir, room.id)
    report["class"].update(fairness(runs))
    t0 = min((r["created"] for r in runs if r.get("created")), default=0)
    report["class"]["run_times"] = [  # seconds since the first run was created: the turns, for a reader to check
        {"name": r["name"], "status": r["status"],
         **{k: None if r.get(k) is None else round(r[k] - t0, 2) for k in ("created", "turn", "started", "ended")}}
        for r in sorted(runs, key=lambda r: r.get("created") or 0)]
    report["class"]["runs"] = dict(Counter(r["status"] for r in runs))
    report["class"]["runs_per_student"] = dict(Counter(r["name"] for r in runs))
    try:
        report["class"]["end_press_s"] = round(await end_class(base_url, teacher, errors, 300), 3)
    except LoadFailed as e:
        errors.add("class", "teacher", f"pressing 'End the class': {e}")
    archive = runs_dir / ".class" / "archive" / f"{room.id}.zip"
    report["class"]["archive_mib"] = _mib(archive.stat().st_size) if archive.exists() else None
    if ClassStore(runs_dir).current() is not None or not archive.exists():
        errors.add("class", "teacher", "after 'End the class' the class is still open or has no archive")
    deadline = time.monotonic() + 120
    while any((read_status(runs_dir, r["run"]) or {}).get("status") in ACTIVE for r in runs):
        if time.monotonic() > deadline:
            errors.add("class", "harness", "runs still active 120 s after the class ended")
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)
    at_end = snapshot(pid)
    # ---- the same run alone again, now the class has left: on a shared machine the speed alone drifts, so the
    # load is compared with the mean of before and after
    after = await train_alone(opts, base_url, runs_dir, errors)
    report["training_alone_after"] = after
    if alone.get("epochs") and after.get("epochs"):
        alone = {**alone, "epochs": alone["epochs"] + after["epochs"]}

    # ---- training: every class run's whole epochs inside the window, against the same run alone
    epochs, steps = [], []
    for r in runs:
        if not r.get("started"):
            continue
        config = {}
        with contextlib.suppress(OSError, ValueError):
            config = json.loads((runs_dir / r["run"] / "config.json").read_text())
        under = images_per_s(read_records(runs_dir, r["run"]), opts.batch_size, r["started"], (wall_start, wall_end),
                             config.get("metrics_every"))
        epochs += under["epochs"]
        if under.get("from_steps"):
            steps.append(under["from_steps"])
    under = {"epochs": epochs, "from_steps": round(sum(steps) / len(steps), 1) if steps else None}
    report["training_under_load"] = {"runs": len(runs), **under}
    report["training_images_per_s"] = training_ratio(alone, under)
    report["server"] = server_figures(pid, at_start, rss_before, server_after, at_end, rss,
                                      window_end - window_start)
    return report


# ---------------------------------------------------------------- figures of a session


def client_figures(watchers: list[WatcherResult], drawers: list[DrawerResult], streams: list[WatcherResult],
                   errors: Errors) -> dict[str, Any]:
    """Page loads, fragment reruns, live-stream updates (of `streams`: the watchers that follow a run) and
    drawings, from what the clients saw."""
    report: dict[str, Any] = {}
    loads: dict[str, list[float]] = defaultdict(list)
    for w in watchers:
        loads[w.page] += w.loads
    for d in drawers:
        loads["draw"] += d.loads
    all_loads = [x for v in loads.values() for x in v]
    report["page_loads"] = {"all": dist(all_loads), **{k: dist(v) for k, v in loads.items()},
                            "failed": errors.messages.get("failed load", {})}
    fragments: dict[str, list[float]] = defaultdict(list)
    for r in [*watchers, *drawers]:
        for k, v in r.fragment_times.items():
            fragments[k] += v
    report["fragment_reruns"] = {k: dist(v) for k, v in sorted(fragments.items())}
    missing = next((w.stream for w in streams if w.stream.startswith("missing")), None)
    pooled = [g for w in streams for g in w.gaps]
    no_update = [w.who for w in streams if w.records_events < 2]
    report["live_stream"] = {
        "endpoint": "missing" if missing else "ok",
        "detail": missing,
        "watchers_with_updates": len(streams) - len(no_update), "watchers_without_update": no_update,
        "gaps": dist(pooled),
        "per_watcher_p50": dist([percentile(w.gaps, 50) for w in streams if w.gaps]),
        "per_watcher_p95": dist([percentile(w.gaps, 95) for w in streams if w.gaps]),
        "per_watcher_max": dist([max(w.gaps) for w in streams if w.gaps]),
        "reconnects": sum(w.reconnects for w in streams),
        "events_without_id": dict(sum((w.events_without_id for w in streams), Counter())),
        "other_events": dict(sum((w.other_events for w in streams), Counter())),
        "per_watcher": [{"who": w.who, "records_events": w.records_events, "status_events": w.status_events,
                         "stream": w.stream, **{k: v for k, v in dist(w.gaps).items() if k != "n"}}
                        for w in streams]}
    latencies = [x for d in drawers for x in d.latencies]
    predictions: Counter = Counter()
    for d in drawers:
        predictions.update(d.predictions)
    report["drawing"] = {**dist(latencies), "with_prediction": sum(predictions.values()),
                         "without_prediction": sum(d.without_prediction for d in drawers),
                         "predictions": dict(predictions)}
    return report


def harness_cpu_s() -> float:
    """CPU seconds (user + system) this harness has used so far: the simulated students' own share of the
    machine, which a real class spends on its own phones."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def training_ratio(alone: dict[str, Any], under: dict[str, Any]) -> dict[str, Any]:
    """Training images/s alone and under load (epoch records, else step records) and their ratio."""
    mean = (lambda eps: round(sum(e["images_per_s"] for e in eps) / len(eps), 1) if eps else None)
    a = mean(alone.get("epochs")) or alone.get("from_steps")
    b = mean(under["epochs"]) or under.get("from_steps")
    return {
        "alone": a, "under_load": b,
        "alone_source": "skipped (--alone-epochs 0)" if alone.get("skipped") else
        f"mean of {len(alone['epochs'])} epoch record(s)" if alone.get("epochs") else "step records",
        "under_load_source": f"mean of {len(under['epochs'])} epoch record(s) inside the window"
        if under["epochs"] else "step records inside the window",
        "alone_from_steps": alone.get("from_steps"), "under_load_from_steps": under.get("from_steps"),
        "under_load_below": under.get("below"),
        "ratio": round(b / a, 3) if a and b else None}


def server_figures(pid: int | None, at_start: dict[str, Any], rss_before: dict[str, Any],
                   server_after: dict[str, Any], at_end: dict[str, Any], rss: RSSSampler, window: float
                   ) -> dict[str, Any]:
    """The server's RSS (start, before the load, peak, end) and CPU during the load, alone and with its
    child processes."""
    ticks = os.sysconf("SC_CLK_TCK")

    def growth(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
        return _mib(b[key] - a[key]) if a.get(key) and b.get(key) else None

    def cores(key: str) -> float | None:
        if not server_after or not rss_before:
            return None
        return round((server_after[key] - rss_before[key]) / ticks / window, 2)

    return {
        "pid": pid,
        "rss_start_mib": _mib(at_start.get("rss")), "rss_before_load_mib": _mib(rss_before.get("rss")),
        "rss_peak_during_load_mib": _mib(max(rss.rss) if rss.rss else None),
        "rss_each_minute_mib": [_mib(x) for x in rss.rss[::60]],  # sampled every second: growth or creep?
        "rss_end_mib": _mib(at_end.get("rss")),
        "rss_growth_during_load_mib": growth(rss_before, at_end, "rss"),
        "rss_growth_since_start_mib": growth(at_start, at_end, "rss"),
        "cpu_during_load_cores": cores("cpu"),
        "tree_note": "the server process plus its child processes (training workers), RSS summed",
        "tree_rss_before_load_mib": _mib(rss_before.get("tree_rss")),
        "tree_rss_peak_during_load_mib": _mib(max(rss.tree_rss) if rss.tree_rss else None),
        "tree_rss_end_mib": _mib(at_end.get("tree_rss")),
        "tree_cpu_during_load_cores": cores("tree_cpu"),
        "children_during_load": server_after.get("children")}


# ---------------------------------------------------------------- the benchmark


@dataclass
class Options:
    watchers: int = 30
    drawers: int = 10
    duration: float = 60.0
    url: str | None = None
    runs_dir: Path | None = None
    server_pid: int | None = None
    data_dir: Path = ROOT / "data"
    checkpoints_dir: Path | None = None
    model: str = "lenet5_bn"
    batch_size: int = 128
    alone_epochs: int = 1
    epochs: int | None = None
    draw_every: float = 3.0
    ramp: float = 3.0
    reload_every: float = 0.0
    load_timeout: float = 60.0
    drawings: str = "auto"
    seed: int = 0
    json_path: Path | None = None
    quiet: bool = False
    classroom: bool = False  # a class: the teacher starts it, students join, train in turns, watch the board
    trainers: int = 5  # of the watchers, students who train (one run training and one waiting each)
    student_epochs: int = 1
    runs_at_once: int = 1  # the class limit the teacher sets
    share_every: int = 3  # a drawer shares every n-th drawing with the class
    teacher_token: str | None = None


def log(opts: Options, text: str) -> None:
    if not opts.quiet:
        print(text, flush=True)


class RSSSampler:
    def __init__(self, pid: int | None):
        self.pid, self.rss, self.tree_rss = pid, [], []

    def sample(self) -> dict[str, Any]:
        snap = snapshot(self.pid)
        if snap:
            self.rss.append(snap["rss"])
            self.tree_rss.append(snap["tree_rss"])
        return snap

    async def run(self, every: float = 1.0) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every)


def _mib(b: int | None) -> float | None:
    return None if b is None else round(b / 2**20, 1)


async def train_alone(opts: Options, base_url: str, runs_dir: Path, errors: Errors) -> dict[str, Any]:
    """One run of --alone-epochs with no client connected: the images/s the load is compared with."""
    if opts.alone_epochs <= 0 or not runs_dir.is_dir():
        return {"skipped": True}
    log(opts, f"training alone: {opts.model}, batch {opts.batch_size}, {opts.alone_epochs} epoch(s), no clients …")
    alone_id = await submit_run(base_url, errors, opts.model, opts.batch_size, opts.alone_epochs)
    status = await wait_status(runs_dir, alone_id, lambda s: s.get("status") not in ACTIVE, 1800,
                               "the end of the alone run")
    alone = {"run": alone_id, "status": status.get("status"),
             **images_per_s(read_records(runs_dir, alone_id), opts.batch_size, status.get("started"))}
    log(opts, f"  alone: {alone}")
    return alone


async def watched_run_session(opts: Options, base_url: str, runs_dir: Path, pid: int | None, errors: Errors,
                              rss: RSSSampler, at_start: dict[str, Any], alone: dict[str, Any], drawings,
                              own: Server | None) -> dict[str, Any]:
    """No class: one run that outlasts --duration, watched live by the watchers while the drawers draw; then
    cancelled."""
    report: dict[str, Any] = {}
    # ---- the run the classroom watches
    epochs = opts.epochs
    if epochs is None:
        epoch_s = next((r.seconds for r in read_records(runs_dir, alone.get("run", "")) if
                        isinstance(r, EpochRecord)), None) if not alone.get("skipped") else None
        epochs = 100 if not epoch_s else int(min(100, max(2, math.ceil(4 * (opts.duration + 60) / epoch_s))))
    run_id = await submit_run(base_url, errors, opts.model, opts.batch_size, epochs)
    report.update(run=run_id, run_epochs=epochs)
    try:
        log(opts, f"watched run {run_id} ({epochs} epochs): waiting for its first steps …")
        if runs_dir.is_dir():
            await wait_status(runs_dir, run_id, lambda s: s.get("status") != RunStatus.QUEUED and s.get("step", 0) > 0,
                              600, "its first step")
        rss_before = rss.sample()

        # ---- the classroom
        rng = random.Random(opts.seed)
        window_start = time.monotonic()
        wall_start = time.time()
        load_before = os.getloadavg()
        end = window_start + opts.duration
        log(opts, f"classroom: {opts.watchers} watchers + {opts.drawers} drawers for {opts.duration:g} s …")
        sampler = asyncio.create_task(rss.run())
        tasks = [watcher(base_url, run_id, f"watcher {i + 1}", errors,
                         window_start + rng.uniform(0, opts.ramp), end, opts.load_timeout, opts.reload_every)
                 for i in range(opts.watchers)]
        tasks += [drawer(base_url, f"drawer {i + 1}", errors, window_start + rng.uniform(0, opts.ramp), end,
                         drawings, opts.draw_every, opts.load_timeout, random.Random(opts.seed + 1 + i))
                  for i in range(opts.drawers)]
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                         opts.duration + opts.load_timeout + 120)
        window_end = time.monotonic()
        wall_end = time.time()
        report["load_average"] = {"before": [round(x, 2) for x in load_before],
                                  "after": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count()}
        sampler.cancel()
        for r in results:
            if isinstance(r, BaseException):
                errors.add("protocol", "harness", f"a client crashed: {type(r).__name__}: {r}")
        watchers = [r for r in results if isinstance(r, WatcherResult)]
        drawers = [r for r in results if isinstance(r, DrawerResult)]
        server_after = snapshot(pid)

        report.update(client_figures(watchers, drawers, watchers, errors))
        # ---- stop the run, then the server's memory after the classroom left
        cancelled = await cancel_run(base_url, errors, run_id)
        if cancelled and runs_dir.is_dir():
            final = await wait_status(runs_dir, run_id, lambda s: s.get("status") not in ACTIVE, 120,
                                      "the end after Cancel")
        else:
            final = read_status(runs_dir, run_id)
        run_id = None  # stopped
        await asyncio.sleep(2)
        at_end = snapshot(pid)
        status = final or {}
        config = {}
        with contextlib.suppress(OSError, ValueError):
            config = json.loads((runs_dir / report["run"] / "config.json").read_text())
        under = images_per_s(read_records(runs_dir, report["run"]), opts.batch_size, status.get("started"),
                             (wall_start, wall_end), config.get("metrics_every"))
        report["training_under_load"] = {"run": report["run"], "final_status": status.get("status"), **under}
        if status.get("started"):  # the run's own pace of writing records: what the stream can deliver at best
            times = [status["started"] + r.time for r in read_records(runs_dir, report["run"])]
            times = [t for t in times if wall_start <= t <= wall_end]
            report["live_stream"]["source_gaps"] = dist([b - a for a, b in zip(times, times[1:])])
        report["training_images_per_s"] = training_ratio(alone, under)
        report["server"] = server_figures(pid, at_start, rss_before, server_after, at_end, rss,
                                          window_end - window_start)
    finally:
        if run_id is not None and own is None:  # someone else's server: do not leave our run training
            with contextlib.suppress(Exception):
                await cancel_run(base_url, errors, run_id)
    return report


async def benchmark(opts: Options) -> dict[str, Any]:
    """Run the whole benchmark; returns every figure (see the module doc) as a dict."""
    errors = Errors()
    WIRE.clear()
    report: dict[str, Any] = {"watchers": opts.watchers, "drawers": opts.drawers, "duration_s": opts.duration,
                              "model": opts.model, "batch_size": opts.batch_size, "setup_error": None}
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t_begin = time.monotonic()
    tmp = tempfile.TemporaryDirectory(prefix="classroom-load-")
    server: Server | None = None
    loop = asyncio.get_running_loop()
    base_url = opts.url
    try:
        # ---- the server
        if opts.url is None:
            runs_dir = Path(tmp.name) / "runs"
            server = Server(runs_dir, opts.data_dir, Path(tmp.name) / "streamlit.log", opts.checkpoints_dir)
            log(opts, f"starting the app on {server.url} (runs in {runs_dir}) …")
            t0 = time.monotonic()
            await loop.run_in_executor(None, server.start)
            report["server_start_s"] = round(time.monotonic() - t0, 1)
            base_url, pid = server.url, server.pid
        else:
            runs_dir = opts.runs_dir or default_runs_dir()
            pid = opts.server_pid or listening_pid(urlsplit(opts.url).port or 80)
        report.update(url=base_url, server_pid=pid, own_server=server is not None, runs_dir=str(runs_dir))
        rss = RSSSampler(pid)
        at_start = rss.sample()

        # ---- a first visit: st.navigation runs once, imports are paid (a cold start, reported apart)
        tab = Tab(base_url, "warm-up", errors, follow_auto_reruns=False)
        try:
            report["cold_first_load_s"] = round(await tab.open("", timeout=SERVER_START_S), 3)
        finally:
            await tab.close()
        if not runs_dir.is_dir():
            log(opts, f"note: runs folder {runs_dir} not found: no training figures (set --runs-dir)")

        # ---- training alone
        alone = await train_alone(opts, base_url, runs_dir, errors)
        report["training_alone"] = alone

        drawings = []
        if opts.drawers:
            if opts.drawings in ("auto", "mnist"):
                drawings = mnist_drawings(opts.data_dir)
            if not drawings:
                drawings = synthetic_drawings()
        report["drawings"] = [name for name, _ in drawings]
        if opts.classroom:
            report.update(await class_session(opts, base_url, runs_dir, pid, errors, rss, at_start, alone, drawings))
        else:
            report.update(await watched_run_session(opts, base_url, runs_dir, pid, errors, rss, at_start, alone,
                                                    drawings, server))
    except (RuntimeError, LoadFailed, OSError, asyncio.TimeoutError) as e:
        report["setup_error"] = f"{type(e).__name__}: {e}"
        if server is not None:
            report["server_log_tail"] = server.log_tail(1500)
    finally:
        if server is not None:
            server.stop()  # blocking, on purpose: also when the benchmark is interrupted
        tmp.cleanup()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    report["harness"] = {"cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
                         "wall_s": round(time.monotonic() - t_begin, 1)}
    report["wire"] = dict(WIRE)
    report["errors"] = errors.summary()
    report["ok"] = ok(report)
    return report


def problems(report: dict[str, Any]) -> list[str]:
    """What makes the run fail, in words; [] when clean."""
    out = []
    if report.get("setup_error"):
        out.append(f"the benchmark could not run: {report['setup_error']}")
        return out
    live = report.get("live_stream", {})
    if live.get("endpoint") == "missing":
        detail = (live.get("detail") or "").removeprefix("missing: ")
        out.append(f"no live stream endpoint ({detail}): none of the {report['watchers']} watchers got a live "
                   "update")
    elif live.get("watchers_without_update"):
        out.append(f"{len(live['watchers_without_update'])} watcher(s) got no live update (fewer than 2 `records` "
                   f"events): {', '.join(live['watchers_without_update'])}")
    board = report.get("board_stream", {})
    if board.get("without_update"):
        out.append(f"{len(board['without_update'])} of {board['watchers']} board watcher(s) got no live board update "
                   f"(fewer than 2 `board` events): {', '.join(board['without_update'][:10])}")
    turns = report.get("class", {}).get("most_turns_of_another_while_waiting", 0)
    if turns > 1:
        out.append(f"unfair turns: while one student's run waited, another student started {turns} runs")
    errors = report.get("errors", {})
    if errors.get("total"):
        kinds = ", ".join(f"{k} {n}" for k, n in errors["by_kind"].items() if n)
        out.append(f"{errors['total']} error(s): {kinds}: {json.dumps(errors['messages'])[:1500]}")
    return out


def ok(report: dict[str, Any]) -> bool:
    return not problems(report)


def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f} s"


def _d(d: dict[str, Any]) -> str:
    return f"n={d['n']:<4} p50 {_s(d['p50'])}  p95 {_s(d['p95'])}  max {_s(d['max'])}"


def print_report(r: dict[str, Any]) -> None:
    print()
    print(f"classroom load: {r['watchers']} watchers + {r['drawers']} drawers for {r['duration_s']:g} s "
          f"against {r.get('url')} ({'own server' if r.get('own_server') else 'given server'}, "
          f"pid {r.get('server_pid')})")
    if r.get("setup_error"):
        print(f"  COULD NOT RUN: {r['setup_error']}")
        if r.get("server_log_tail"):
            print(r["server_log_tail"])
        return
    print(f"  cold first load of /     {_s(r.get('cold_first_load_s'))}   "
          f"(server start {r.get('server_start_s', '—')} s)")
    for k, d in r["page_loads"].items():
        if k != "failed":
            print(f"  page loads {k:<14} {_d(d)}")
    for k, d in r["fragment_reruns"].items():
        print(f"  fragment rerun {k:<24} {_d(d)}")
    live = r["live_stream"]
    if live["endpoint"] == "missing":
        print(f"  live stream              NO LIVE STREAM ENDPOINT: {live['detail'].removeprefix('missing: ')}")
    else:
        print(f"  live stream              {live['watchers_with_updates']}/{len(live['per_watcher'])} watchers got updates; "
              f"reconnects {live['reconnects']}")
        print(f"    update gaps, pooled    {_d(live['gaps'])}")
        print(f"    per watcher p50        {_d(live['per_watcher_p50'])}")
        print(f"    per watcher p95        {_d(live['per_watcher_p95'])}")
        print(f"    per watcher max        {_d(live['per_watcher_max'])}")
        if live.get("source_gaps"):
            print(f"    records written, gaps  {_d(live['source_gaps'])}   (metrics.jsonl: the run's own pace)")
    if r.get("class"):
        c = r["class"]
        print(f"  class                    {c['joined']}/{c['students']} students joined; Start {c['start_press_s']} s, "
              f"End {c.get('end_press_s', '—')} s (archive {c.get('archive_mib')} MiB); runs {c.get('runs')}, "
              f"{c['runs_at_once']} at once")
        print(f"    join (press → page)    {_d(c['join_press'])}")
        print(f"    Train (press → page)   {_d(c['train_press'])}")
        print(f"    share a drawing        {_d(c['share_press'])}")
        print(f"    every interaction      {_d(c['interactions'])}   (joins, Train, drawings, shares)")
        print(f"    queue wait             {_d(c['queue_wait'])}   (created → started)")
        b = r.get("board_stream", {})
        if b:
            print(f"    board stream           {b['watchers'] - len(b['without_update'])}/{b['watchers']} pages got "
                  f"live updates: {b['updates']['p50']} each (p50); between updates {_d(b['gaps'])}")
        print(f"    fair turns             most runs another student started while one waited: "
              f"{c['most_turns_of_another_while_waiting']} (round-robin: at most 1); runs per student "
              f"{c.get('runs_per_student')}")
    dr = r["drawing"]
    print(f"  drawing → prediction     {_d(dr)}   with prediction {dr['with_prediction']}, "
          f"without {dr['without_prediction']}")
    e = r["errors"]
    print(f"  errors                   {e['total']}  (" + ", ".join(f"{k} {n}" for k, n in e["by_kind"].items()) + ")")
    for kind, messages in e["messages"].items():
        for m, n in messages.items():
            print(f"    {kind} x{n}: {m[:160]}")
    s = r["server"]
    print(f"  server RSS               start {s['rss_start_mib']} MiB → before load {s['rss_before_load_mib']} MiB → "
          f"end {s['rss_end_mib']} MiB (growth during load {s['rss_growth_during_load_mib']} MiB, since start "
          f"{s['rss_growth_since_start_mib']} MiB; peak {s['rss_peak_during_load_mib']} MiB)")
    print(f"    each minute of the load {s.get('rss_each_minute_mib')} MiB")
    print(f"  server CPU during load   {s['cpu_during_load_cores']} cores; with its child processes "
          f"{s['tree_cpu_during_load_cores']} cores, RSS {s['tree_rss_before_load_mib']} → "
          f"{s['tree_rss_end_mib']} MiB (peak {s['tree_rss_peak_during_load_mib']}; "
          f"children {s['children_during_load']})")
    t = r["training_images_per_s"]
    under = (f"under load {t['under_load']} ({t['under_load_source']})" if t["under_load"] else
             f"under load below {t['under_load_below']} (fewer than 2 step records in the window)")
    print(f"  training images/s        alone {t['alone']} ({t['alone_source']}), {under}; ratio {t['ratio']}   "
          f"[from step records: alone {t['alone_from_steps']}, under load {t['under_load_from_steps']}]")
    if r.get("training_alone_after", {}).get("epochs"):
        first = lambda a: a["epochs"][0]["images_per_s"] if a.get("epochs") else None  # noqa: E731
        print(f"    alone before the class {first(r['training_alone'])}, after it {first(r['training_alone_after'])} "
              "(the ratio uses their mean: the machine's speed drifts)")
    w = r.get("wire", {})
    print(f"  harness                  {r['harness']['cpu_s']} s CPU in {r['harness']['wall_s']} s; websocket: "
          f"{w.get('backmsgs', 0)} BackMsgs sent, {w.get('forwardmsgs', 0)} ForwardMsgs "
          f"({w.get('forwardmsg_bytes', 0) / 2**20:.1f} MiB) received, {w.get('ref_hash_hits', 0)} answered from "
          "the client's message cache")
    if r.get("harness_class_cores") is not None:
        print(f"    during the class it used {r['harness_class_cores']} cores of the machine's "
              f"{os.cpu_count()} (in a real class the students' phones do this work)")
    if r.get("load_average"):
        la = r["load_average"]
        print(f"  machine load average     {la['before'][0]} before the classroom, {la['after'][0]} after "
              f"({la['cores']} cores; other processes count in every figure)")
    for p in problems(r):
        print(f"  FAIL: {p[:600]}")
    if r["ok"]:
        print("  OK")


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--watchers", type=int, default=30, help="clients on /train?run=<id> following the live stream")
    p.add_argument("--drawers", type=int, default=10, help="clients on /draw sending drawings")
    p.add_argument("--duration", type=float, default=60, help="seconds the classroom works")
    p.add_argument("--url", help="a running app (http://127.0.0.1:PORT) instead of starting one")
    p.add_argument("--runs-dir", type=Path, help="that app's runs folder (default $CNN_RUNS_DIR or ./runs)")
    p.add_argument("--server-pid", type=int, help="that app's pid, for its RSS (default: found from the port)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNN_DATA_DIR", ROOT / "data")),
                   help="CNN_DATA_DIR of the started app, and where the drawings' MNIST digits come from")
    p.add_argument("--model", default="lenet5_bn")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--alone-epochs", type=int, default=1, help="epochs trained first with no client (0: skip)")
    p.add_argument("--epochs", type=int, help="epochs of the watched run (default: enough to outlast --duration)")
    p.add_argument("--draw-every", type=float, default=3.0, help="seconds between a drawer's drawings (±30%%)")
    p.add_argument("--ramp", type=float, default=3.0, help="clients arrive spread over this many seconds")
    p.add_argument("--reload-every", type=float, default=0, help="watchers reload their page this often (0: never)")
    p.add_argument("--load-timeout", type=float, default=60)
    p.add_argument("--drawings", choices=("auto", "mnist", "synthetic"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, dest="json_path", help="write every figure to this JSON file")
    c = p.add_argument_group("a class (--class)")
    c.add_argument("--class", action="store_true", dest="classroom",
                   help="run a class: the teacher link starts it, every client joins by name, --trainers of the "
                        "watchers train in fair turns and watch their runs live, the others keep the class board "
                        "open, drawers share drawings; the teacher projects a run and ends the class")
    c.add_argument("--trainers", type=int, default=5, help="watchers who train (default 5)")
    c.add_argument("--student-epochs", type=int, default=1, help="epochs of each student's run")
    c.add_argument("--runs-at-once", type=int, default=1, help="the class limit the teacher sets (default 1)")
    c.add_argument("--share-every", type=int, default=3, help="a drawer shares every n-th drawing (0: never)")
    c.add_argument("--teacher-token", help="the teacher token of a --url app (default: read from its runs folder)")
    a = p.parse_args(argv)
    if a.url and urlsplit(a.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        p.error("--url must be a loopback address (127.0.0.1)")
    return Options(watchers=a.watchers, drawers=a.drawers, duration=a.duration, url=a.url, runs_dir=a.runs_dir,
                   server_pid=a.server_pid, data_dir=a.data_dir, model=a.model, batch_size=a.batch_size,
                   alone_epochs=a.alone_epochs, epochs=a.epochs, draw_every=a.draw_every, ramp=a.ramp,
                   reload_every=a.reload_every, load_timeout=a.load_timeout, drawings=a.drawings, seed=a.seed,
                   json_path=a.json_path, classroom=a.classroom, trainers=a.trainers, student_epochs=a.student_epochs,
                   runs_at_once=a.runs_at_once, share_every=a.share_every, teacher_token=a.teacher_token)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        report = asyncio.run(benchmark(opts))
    except KeyboardInterrupt:  # the server (and what it started) was stopped on the way out
        print("interrupted: no figures", file=sys.stderr)
        return 130
    print_report(report)
    if opts.json_path:
        opts.json_path.write_text(json.dumps(report, indent=1, default=str))
        print(f"  figures written to {opts.json_path}")
    if report.get("setup_error"):
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
