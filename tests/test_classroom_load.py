"""bench/classroom_load.py: its server-sent-events client against a stub, and the benchmark run small
(4 watchers + 2 drawers, 20 s, synthetic data) against the app served on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import run_async, write_dataset

REPO = Path(__file__).parents[1]


@pytest.fixture
def load(load_bench):
    return load_bench("classroom_load")


# ---------------------------------------------------------------- the SSE parser


def test_sse_parser_splits_events_across_chunks_line_endings_and_comments(load):
    parser = load.SSEParser()
    stream = (b": hello\r\nid: 1\r\nevent: status\r\ndata: {\"status\": \"running\"}\r\n\r\n"
              b"event: records\ndata: [1,\ndata: 2]\nid: 2\n\n"
              b"retry: 5000\rdata: plain\r\r")
    events = []
    for i in range(0, len(stream), 7):  # arbitrary chunk boundaries, CRLF split in two included
        events += parser.feed(stream[i:i + 7])
    assert events == [("status", '{"status": "running"}', "1"), ("records", "[1,\n2]", "2"),
                      ("message", "plain", None)]  # an event's own id; lastEventId persists:
    assert parser.last_id == "2"
    assert parser.retry_ms == 5000


# ---------------------------------------------------------------- a stub live stream


class Stub:
    """An HTTP/1.1 server on loopback whose /api/runs/<id>/events streams `script` (chunked), as the app's
    endpoint does: a list of (delay_s, event, data, id) per connection; `requests` logs the headers."""

    def __init__(self):
        self.scripts: list[list[tuple[float, str, object, str | None]]] = []
        self.requests: list[dict[str, str]] = []
        self.html = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stub.requests.append({k.lower(): v for k, v in self.headers.items()})
                if stub.html:  # what Streamlit answers for a path it does not know
                    body = b"<!doctype html><html>streamlit</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if not self.path.startswith("/api/runs/") or not stub.scripts:
                    body = b"No run x."
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                script = stub.scripts.pop(0)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for delay, event, data, event_id in script:
                    time.sleep(delay)
                    if event == "DROP":  # the connection breaks mid-stream
                        return
                    text = (f"id: {event_id}\n" if event_id else "") + f"event: {event}\ndata: {json.dumps(data)}\n\n"
                    raw = text.encode()
                    self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def follow(load, url: str, seconds: float = 10):
    result = load.WatcherResult("watcher 1")
    errors = load.Errors()
    run_async(load.follow_stream(url, "run-1", result, errors, time.monotonic() + seconds))
    return result, errors


RUNNING = {"status": "running", "step": 20, "total_steps": 100, "epoch": 1}


def test_a_watcher_times_the_gaps_between_records_and_stops_after_the_final_status(load):
    with Stub() as stub:
        stub.scripts.append([(0, "status", RUNNING, None), (0, "records", [{"event": "step", "step": 20}], "1"),
                             *[(0.3, "records", [{"event": "step", "step": 20 * k}], str(k)) for k in (2, 3, 4)],
                             (0.05, "status", {**RUNNING, "status": "finished"}, None)])
        t0 = time.monotonic()
        result, errors = follow(load, stub.url)
    assert time.monotonic() - t0 < 5, "the stream ended after the final status: the watcher must stop"
    assert errors.total == 0, errors.summary()
    assert (result.records_events, result.status_events) == (4, 2)
    assert result.stream == "ended after the final status"
    assert len(result.gaps) == 3 and all(0.2 < g < 1.5 for g in result.gaps), result.gaps  # the backlog is no gap
    assert stub.requests[0]["accept"] == "text/event-stream"


def test_a_dropped_stream_is_resumed_with_last_event_id(load):
    with Stub() as stub:
        stub.scripts.append([(0, "status", RUNNING, None), (0, "records", [{"step": 20}], "1"),
                             (0.1, "records", [{"step": 40}], "2"), (0.1, "DROP", None, None)])
        stub.scripts.append([(0, "records", [{"step": 60}], "3"),
                             (0.1, "status", {**RUNNING, "status": "finished"}, None)])
        result, errors = follow(load, stub.url, seconds=15)
    assert errors.total == 0, errors.summary()
    assert result.reconnects == 1 and result.records_events == 3
    assert stub.requests[1].get("last-event-id") == "2"


def test_the_apps_index_page_instead_of_a_stream_means_no_live_stream_endpoint(load):
    with Stub() as stub:
        stub.html = True  # Streamlit answers a path it does not route with its index page, 200 text/html
        result, errors = follow(load, stub.url, seconds=5)
    assert errors.total == 0 and result.records_events == 0
    assert result.stream.startswith("missing: GET /api/runs/<id>/events answered HTTP 200 text/html"), result.stream


def test_a_404_from_the_endpoint_is_an_error_and_not_retried(load):
    with Stub() as stub:  # no script: the endpoint answers 404 "No run x." (an unknown run)
        result, errors = follow(load, stub.url, seconds=5)
        assert len(stub.requests) == 1, "EventSource does not reconnect after a 404"
    assert errors.counts["live stream"] == 1 and "404" in result.stream, (result.stream, errors.summary())


# ---------------------------------------------------------------- the benchmark, small, against the app


def test_a_small_classroom_sees_live_updates_drawings_and_no_errors(load, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_dataset(data / "mnist", n_train=12000, n_test=300)  # ~1 s an epoch: the watched run outlasts 20 s
    monkeypatch.setenv("CNN_DATA_VERIFY", "0")
    monkeypatch.setenv("CNN_CHECKPOINTS_DIR", str(REPO / "checkpoints"))  # the Draw page's pretrained models
    monkeypatch.delenv("CNN_HOSTED", raising=False)
    opts = load.Options(watchers=4, drawers=2, duration=20, data_dir=data, alone_epochs=1, drawings="synthetic",
                        draw_every=2.0, ramp=2.0, load_timeout=45)
    report = run_async(load.benchmark(opts))
    load.print_report(report)
    out = capsys.readouterr().out
    problems = load.problems(report)
    assert not problems, "the classroom benchmark failed:\n" + "\n".join(problems) + "\n" + out[-3000:]
    assert report["page_loads"]["all"]["n"] == 6, out
    assert report["live_stream"]["watchers_with_updates"] == 4, out
    assert report["drawing"]["n"] >= 2 and report["drawing"]["with_prediction"] == report["drawing"]["n"], out
    assert any(k.startswith("train") for k in report["fragment_reruns"]), "no sidebar auto-rerun measured:\n" + out
    assert report["training_images_per_s"]["alone"] and report["training_images_per_s"]["under_load"], out
    assert report["server"]["rss_end_mib"], out


def test_a_small_class_joins_trains_in_turns_shares_and_ends(load, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_dataset(data / "mnist", n_train=6000, n_test=300)
    monkeypatch.setenv("CNN_DATA_VERIFY", "0")
    monkeypatch.setenv("CNN_CHECKPOINTS_DIR", str(REPO / "checkpoints"))
    monkeypatch.delenv("CNN_HOSTED", raising=False)
    monkeypatch.delenv("CNN_TEACHER_TOKEN", raising=False)  # the token the app keeps in its runs folder
    opts = load.Options(classroom=True, watchers=3, trainers=2, drawers=1, duration=20, data_dir=data,
                        alone_epochs=1, drawings="synthetic", draw_every=2.0, share_every=1, ramp=2.0,
                        load_timeout=45, runs_at_once=2)
    report = run_async(load.benchmark(opts))
    load.print_report(report)
    out = capsys.readouterr().out
    problems = load.problems(report)
    assert not problems, "the class benchmark failed:\n" + "\n".join(problems) + "\n" + out[-3000:]
    c = report["class"]
    assert c["joined"] == c["students"] == 4, out
    assert c["projected"], "the teacher put no run on the projector:\n" + out
    names = c["runs_per_student"]
    assert set(names) == {"Student 01", "Student 02"} and min(names.values()) >= 2, out  # named runs, both trained
    assert c["most_turns_of_another_while_waiting"] <= 1, out
    assert c["share_press"]["n"] >= 1 and c["archive_mib"], out  # a drawing on the wall; the class archived
    assert report["live_stream"]["watchers_with_updates"] == 2, out
    assert any(k.startswith("board") for k in report["fragment_reruns"]), "no board refresh measured:\n" + out
    assert report["training_images_per_s"]["under_load"], out


def test_fair_turns_figure_counts_the_turns_another_student_took_while_a_run_was_due(load):
    def run(owner, created, started, ended=None):
        return {"owner": owner, "name": owner, "created": created, "turn": started, "started": started, "ended": ended}

    # one run at a time; each student's next run is due when their previous one ended
    round_robin = [run("a", 0, 0, 10), run("b", 1, 10, 20), run("a", 2, 20, 30), run("b", 11, 30)]
    assert load.fairness(round_robin)["most_turns_of_another_while_waiting"] == 1
    first_come = [run("a", 0, 0, 10), run("b", 1, 10, 20), run("b", 2, 20, 30), run("a", 3, 30)]  # b twice
    figures = load.fairness(first_come)
    assert figures["most_turns_of_another_while_waiting"] == 2
    assert figures["start_order"] == ["a", "b", "b", "a"] and figures["queue_wait"]["max"] == 27
    assert load.problems({"class": figures, "live_stream": {}, "errors": {}}) == [
        "unfair turns: while one student's run waited, another student started 2 runs"]
