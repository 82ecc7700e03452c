"""RunStore: creating runs, merging status, appending and tailing metrics, and listing a folder that holds
broken runs without ever raising; RunInfo's derived values."""

import json
import threading

import pytest

from cnn_core.config import TrainConfig
from cnn_core.runs.layout import RunFolder
from cnn_core.runs.records import EndRecord, EpochRecord, History, StepRecord, to_dict
from cnn_core.runs.status import RunStatus
from cnn_core.runs.store import RunInfo, RunStore

CONFIG = TrainConfig(model="mlp", epochs=2, batch_size=32, lr=0.01)
STEP = StepRecord(1, 5, time=0.5, train_loss=2.0, train_acc=0.3, lr=0.01)
EPOCH = EpochRecord(1, 10, time=1.0, train_loss=1.5, train_acc=0.5, val_loss=1.4, val_acc=0.6, lr=0.01, seconds=1.0,
                    images_per_s=640.0)
END = EndRecord(1, 10, time=1.2, status=RunStatus.FINISHED, test_loss=1.3, test_acc=0.62, seconds=1.2)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def visible(store):
    return sorted(p.name for p in store.root.iterdir())


def test_create_writes_config_meta_and_status(store):
    run_id = store.create(CONFIG, owner="owner-hash", recipe="lenet basics", group="sweep-1")
    folder = store.folder(run_id)
    assert visible(store) == [run_id] and run_id.split("-")[2] == "mlp"
    assert json.loads(folder.config.read_text()) == CONFIG.to_dict()
    meta = json.loads(folder.meta.read_text())
    assert (meta["owner"], meta["recipe"], meta["group"]) == ("owner-hash", "lenet basics", "sweep-1")
    status = json.loads(folder.status.read_text())
    assert status["status"] == "queued" and status["owner"] == "owner-hash" and status["created"] == meta["created"]
    run = store.read(run_id)
    assert run.config == CONFIG and run.state is RunStatus.QUEUED and run.error is None
    assert (run.recipe, run.group) == ("lenet basics", "sweep-1") and len(run.history) == 0


def test_create_gives_distinct_ids(store):
    ids = {store.create(CONFIG) for _ in range(5)}
    assert len(ids) == 5 and visible(store) == sorted(ids)  # no draft folder left behind


def test_default_root_is_the_settings_runs_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_set_status_merges(store):
    run_id = store.create(CONFIG, owner="me")
    store.set_status(run_id, RunStatus.RUNNING, step=3, total_steps=100)
    store.set_status(run_id, epoch=1, step=7)
    status = store.read_status(run_id)
    assert status["status"] == "running" and status["step"] == 7 and status["epoch"] == 1
    assert status["total_steps"] == 100 and status["owner"] == "me" and status["updated"] >= status["created"]
    store.set_status(run_id, "finished")
    assert store.read(run_id).state is RunStatus.FINISHED


def test_set_status_from_many_threads_loses_no_field(store):
    run_id = store.create(CONFIG)

    def worker(t):
        for i in range(15):
            store.set_status(run_id, **{f"t{t}_{i}": i})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status = store.read_status(run_id)
    assert all(status[f"t{t}_{i}"] == i for t in range(8) for i in range(15)) and status["status"] == "queued"


def test_append_and_tail_by_byte_offset(store):
    run_id = store.create(CONFIG)
    assert store.tail(run_id) == ([], 0)  # no metrics yet
    store.append(run_id, STEP)
    store.append(run_id, EPOCH)
    records, offset = store.tail(run_id)
    assert records == [STEP, EPOCH] and offset == store.folder(run_id).metrics.stat().st_size
    assert store.tail(run_id, offset) == ([], offset)
    store.append(run_id, END)
    records, offset2 = store.tail(run_id, offset)
    assert records == [END] and offset2 == store.folder(run_id).metrics.stat().st_size


def test_tail_waits_for_a_partial_last_line(store):
    run_id = store.create(CONFIG)
    store.append(run_id, STEP)
    _, offset = store.tail(run_id)
    line = json.dumps(to_dict(EPOCH)) + "\n"
    metrics = store.folder(run_id).metrics
    with open(metrics, "a") as f:
        f.write(line[:25])  # a worker mid-write
    assert store.tail(run_id, offset) == ([], offset)
    assert store.tail(run_id) == ([STEP], offset)
    with open(metrics, "a") as f:
        f.write(line[25:])
    assert store.tail(run_id, offset) == ([EPOCH], offset + len(line.encode()))


def test_rewrite_history(store):
    run_id = store.create(CONFIG)
    for record in (STEP, EPOCH, END):
        store.append(run_id, record)
    store.rewrite_history(run_id, History([STEP, EPOCH]))
    assert store.read(run_id).history == History([STEP, EPOCH])
    store.append(run_id, END)
    assert list(store.read(run_id).history) == [STEP, EPOCH, END]


@pytest.mark.parametrize("run_id", ["20260101-000000-mlp-00000000", "../runs", ".new-abc", "a/b", "", None])
def test_read_of_a_missing_run_is_a_key_error(store, run_id):
    store.create(CONFIG)
    with pytest.raises(KeyError):
        store.read(run_id)
    with pytest.raises(KeyError):
        store.open(run_id)
    with pytest.raises(KeyError):
        store.read_status(run_id)


def broken_runs(store):
    """A good run and three that cannot be read, plus what list() must skip: hidden folders and a stray file."""
    good = store.create(CONFIG)
    empty_status = store.create(CONFIG)
    store.folder(empty_status).status.write_text("")
    list_config = store.create(CONFIG)
    store.folder(list_config).config.write_text(json.dumps([1, 2]))
    no_files = "20250101-000000-mlp-deadbeef"
    (store.root / no_files).mkdir()
    for hidden in (".new-0123456789abcdef", f".deleted-{good}-0a0b0c0d"):
        (store.root / hidden).mkdir()
        (store.root / hidden / "config.json").write_text(json.dumps(CONFIG.to_dict()))
        (store.root / hidden / "status.json").write_text('{"status": "queued"}')
    (store.root / "notes.txt").write_text("not a run")
    return good, empty_status, list_config, no_files


def test_list_shows_unreadable_runs_with_the_reason_and_the_others(store):
    good, empty_status, list_config, no_files = broken_runs(store)
    runs = {run.id: run for run in store.list()}
    assert set(runs) == {good, empty_status, list_config, no_files}
    assert runs[good].state is RunStatus.QUEUED and runs[good].error is None
    for run_id in (empty_status, list_config, no_files):
        run = runs[run_id]
        assert run.state is RunStatus.UNREADABLE and run.config is None
        assert isinstance(run.error, str) and run.error and "Traceback" not in run.error
    assert "config.json" in runs[list_config].error and "list" in runs[list_config].error
    assert runs[no_files].error == "its config.json is missing"
    assert [r.id for r in store.list()] == sorted(runs, reverse=True)  # newest first


def test_open_never_raises_for_a_folder_that_exists(store):
    _, empty_status, list_config, no_files = broken_runs(store)
    for run_id in (empty_status, list_config, no_files):
        run = store.open(run_id)
        assert run.state is RunStatus.UNREADABLE and run.folder == store.folder(run_id)
        with pytest.raises((OSError, ValueError)):
            store.read(run_id)  # read says what went wrong; open turns it into a listed run


def test_unreadable_reason_names_the_broken_file(store):
    run_id = store.create(CONFIG)
    store.folder(run_id).status.write_text("")
    assert "status.json" in store.open(run_id).error


def test_list_survives_a_metrics_line_that_is_not_an_object(store):
    good = store.create(CONFIG)
    bad = store.create(CONFIG)
    store.append(bad, STEP)
    with open(store.folder(bad).metrics, "a") as f:
        f.write("null\n")
    runs = {run.id: run for run in store.list()}
    assert set(runs) == {good, bad} and runs[good].state is RunStatus.QUEUED


def test_delete(store):
    keep, gone = store.create(CONFIG), store.create(CONFIG)
    store.append(gone, STEP)
    store.delete(gone)
    assert visible(store) == [keep]  # not even the renamed-aside folder is left
    assert [r.id for r in store.list()] == [keep]
    with pytest.raises(KeyError):
        store.read(gone)
    store.delete(gone)  # deleted meanwhile by another session: nothing to do


def info(status, tmp_path, history=()):
    return RunInfo("r1", RunFolder(tmp_path), CONFIG, status, History(history))


@pytest.mark.parametrize("status, progress", [({}, 0.0), ({"step": 5}, 0.0), ({"step": 25, "total_steps": 100}, 0.25),
                                              ({"step": 120, "total_steps": 100}, 1.0)])
def test_progress(tmp_path, status, progress):
    assert info(status, tmp_path).progress == progress


def test_eta_from_the_pace_so_far(tmp_path):
    running = {"status": "running", "total_steps": 100, "step": 10, "elapsed": 5.0, "resumed_at_step": 0,
               "resumed_at_elapsed": 0.0}
    assert info(running, tmp_path).eta_s == pytest.approx(45.0)  # 0.5 s a step, 90 steps left
    resumed = {**running, "step": 60, "elapsed": 30.0, "resumed_at_step": 50, "resumed_at_elapsed": 20.0}
    assert info(resumed, tmp_path).eta_s == pytest.approx(40.0)  # 1 s a step since the resume, 40 steps left
    assert info({**resumed, "step": 50, "elapsed": 20.0}, tmp_path).eta_s is None  # no step yet since the resume
    assert info({**running, "step": 0}, tmp_path).eta_s is None
    assert info({**running, "status": "queued"}, tmp_path).eta_s is None
    assert info({**running, "status": "finished", "step": 100}, tmp_path).eta_s is None


def test_can_resume_needs_a_resumable_status_and_the_resume_state(store):
    run_id = store.create(CONFIG)
    store.set_status(run_id, RunStatus.STOPPED)
    assert not store.read(run_id).can_resume
    store.folder(run_id).resume_state.write_bytes(b"state")
    assert store.read(run_id).can_resume
    for status, resumable in ((RunStatus.INTERRUPTED, True), (RunStatus.FAILED, True), (RunStatus.FINISHED, False),
                              (RunStatus.RUNNING, False), (RunStatus.CANCELLED, False)):
        store.set_status(run_id, status)
        assert store.read(run_id).can_resume is resumable


def test_checkpoint_is_the_latest(store):
    run_id = store.create(CONFIG)
    assert store.read(run_id).checkpoint is None
    store.folder(run_id).checkpoint_path("epoch-1.safetensors").write_bytes(b"w")
    assert store.read(run_id).checkpoint.name == "epoch-1.safetensors"


def test_summary_of_a_readable_and_an_unreadable_run(store):
    run_id = store.create(CONFIG)
    store.set_status(run_id, RunStatus.FINISHED, elapsed=12.345)
    for record in (STEP, EPOCH, END):
        store.append(run_id, record)
    row = store.read(run_id).summary()
    assert row == {"run": run_id, "model": "mlp", "dataset": "mnist", "status": "finished", "epochs": 2, "batch": 32,
                   "optimizer": "adam", "lr": 0.01, "schedule": "none", "best val acc": 0.6, "test acc": 0.62,
                   "seconds": 12.3}
    broken = store.create(CONFIG)
    store.folder(broken).config.unlink()
    assert store.open(broken).summary() == {"run": broken, "status": "unreadable",
                                            "error": "its config.json is missing"}


def test_live_runs_read_each_file_once_and_then_only_new_metrics_lines(tmp_path):
    from cnn_core.runs import EpochRecord
    from cnn_core.runs.store import LiveRuns

    store = RunStore(tmp_path)
    mine = store.create(TrainConfig(model="mlp"), "me", **{"class": "c1"})
    other = store.create(TrainConfig(model="mlp"), "you", **{"class": "c2"})
    for run_id in (mine, other):
        store.append(run_id, EpochRecord(1, 10, 1.0, 0.5, 0.8, 0.5, 0.8, 1e-3, 1.0, 100.0))
    live = LiveRuns(store)
    offsets = []
    real_tail = store.tail
    store.tail = lambda run_id, offset=0: offsets.append((run_id, offset)) or real_tail(run_id, offset)
    (run,) = live.list(keep=lambda meta: meta.get("class") == "c1")
    assert run.id == mine and [e.val_acc for e in run.history.epochs] == [0.8] and offsets == [(mine, 0)]
    store.append(mine, EpochRecord(2, 20, 2.0, 0.4, 0.85, 0.4, 0.9, 1e-3, 1.0, 100.0))
    (run,) = live.list(keep=lambda meta: meta.get("class") == "c1")
    assert [e.val_acc for e in run.history.epochs] == [0.8, 0.9] and offsets[-1][1] > 0  # from where it stopped
    store.rewrite_history(mine, run.history.until_epoch(1))  # a resumed run drops records: read from the start
    (run,) = live.list(keep=lambda meta: meta.get("class") == "c1")
    assert [e.val_acc for e in run.history.epochs] == [0.8]
    store.delete(mine)
    assert live.list(keep=lambda meta: meta.get("class") == "c1") == [] and mine not in live._seen
    assert [r.id for r in live.list()] == [other]
