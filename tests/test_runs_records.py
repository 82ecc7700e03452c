"""Run records (step, epoch, end, and a run's changes by hand: control, hand_step): the dict form written to
metrics.jsonl and parsed back (older files too), and History's queries."""

import json
import math

import pytest

from cnn_core.runs.records import (ControlRecord, EndRecord, EpochRecord, HandStepRecord, History, StepRecord, finite,
                                   parse, to_dict)
from cnn_core.runs.status import RunStatus


def step(epoch=1, step=5, loss=2.0, acc=0.3):
    return StepRecord(epoch, step, time=0.5 * step, train_loss=loss, train_acc=acc, lr=0.01)


def epoch(n, val_acc, step=None, images_per_s=1000.0):
    return EpochRecord(n, step if step is not None else 10 * n, time=float(n), train_loss=1.0, train_acc=0.5,
                       val_loss=1.1, val_acc=val_acc, lr=0.01, seconds=1.0, images_per_s=images_per_s)


def end(n=3, test_acc=0.9, status=RunStatus.FINISHED):
    return EndRecord(n, 10 * n, time=n + 0.5, status=status, test_loss=0.4, test_acc=test_acc, seconds=n + 0.5)


RECORDS = [step(), epoch(1, 0.6), end()]
WITH_STATS = StepRecord(1, 10, time=1.0, train_loss=1.5, train_acc=0.4, lr=0.01, grad_norms={"conv1": 0.02, "fc1": 0.5},
                        weight_norms={"conv1": 3.1, "fc1": 9.0},
                        weight_hist={"conv1": {"lo": -0.4, "hi": 0.4, "counts": [1, 5, 3]}}, vanishing=["conv1"])
CONTROL = ControlRecord(1, 12, time=1.2, action="set", lr=0.1, momentum=0.9, paused=False)
HAND_STEP = HandStepRecord(1, 13, time=1.3, loss=0.7, acc=0.5, update_ratio=0.002, batch_size=64, labels=[3, 1],
                           predictions=[3, 7], side=28, images="AAAA")


@pytest.mark.parametrize("record", RECORDS + [WITH_STATS, CONTROL, HAND_STEP], ids=lambda r: r.event)
def test_to_dict_and_parse_round_trip(record):
    data = to_dict(record)
    assert data["event"] == record.event
    assert parse(data) == record
    assert parse(json.loads(json.dumps(data))) == record  # as read back from metrics.jsonl


def test_end_record_status_is_a_plain_string_on_disk_and_a_run_status_when_read():
    data = json.loads(json.dumps(to_dict(end(status=RunStatus.EARLY_STOPPED))))
    assert data["status"] == "early_stopped"
    assert parse(data).status is RunStatus.EARLY_STOPPED
    assert parse({**data, "status": "gone"}).status is RunStatus.UNREADABLE


@pytest.mark.parametrize("x, expected", [(1.5, 1.5), (0.0, 0.0), (None, None), (math.nan, None), (math.inf, None),
                                         (-math.inf, None)])
def test_finite(x, expected):
    assert finite(x) == expected


def test_nan_and_inf_are_written_as_null_and_read_as_none():
    diverged = StepRecord(2, 40, time=3.0, train_loss=math.nan, train_acc=math.inf, lr=0.5)
    line = json.dumps(to_dict(diverged))
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line)["train_loss"] is None and json.loads(line)["train_acc"] is None
    back = parse(json.loads(line))
    assert back.train_loss is None and back.train_acc is None and back.lr == 0.5
    assert parse({**to_dict(step()), "train_loss": math.nan}).train_loss is None  # a NaN that reached a dict


@pytest.mark.parametrize("data", [{}, {"event": "batch", "epoch": 1}, {"epoch": 1, "step": 2}, {"event": None}])
def test_parse_rejects_dicts_that_are_not_records(data):
    with pytest.raises(ValueError, match="not a run record"):
        parse(data)


def test_a_metrics_line_written_before_the_layer_statistics_still_parses():
    old = {"event": "step", "epoch": 1, "step": 5, "time": 2.5, "train_loss": 2.0, "train_acc": 0.3, "lr": 0.01}
    record = parse(json.loads(json.dumps(old)))
    assert record == step() and record.grad_norms is None and record.vanishing is None
    assert History.parse([old, to_dict(epoch(1, 0.6))]).controls == []


def test_checkpoints_keep_the_history_without_the_bulky_layer_statistics():
    lean = History([WITH_STATS, CONTROL, HAND_STEP]).without_layer_stats()
    assert lean[0].grad_norms is lean[0].weight_norms is lean[0].weight_hist is None
    assert lean[0].vanishing == ["conv1"] and lean[0].train_loss == WITH_STATS.train_loss
    assert list(lean)[1:] == [CONTROL, HAND_STEP]


def test_a_nan_inside_the_layer_statistics_is_written_as_null():
    line = json.dumps(to_dict(StepRecord(1, 5, 0.5, 2.0, 0.3, 0.01, grad_norms={"conv1": math.nan})))
    assert "NaN" not in line and json.loads(line)["grad_norms"] == {"conv1": None}


@pytest.mark.parametrize("data", [None, 5, "step", [{"event": "step"}], {"event": ["step"]}])
def test_parse_rejects_rows_that_are_not_objects_with_value_error(data):
    with pytest.raises(ValueError):
        parse(data)


def test_history_parse_keeps_records_in_order_and_leaves_out_the_rest():
    rows = [to_dict(RECORDS[0]), {"event": "note", "text": "hi"}, RECORDS[1], to_dict(RECORDS[2])]
    history = History.parse(rows)
    assert list(history) == RECORDS and len(history) == 3 and history[1] == RECORDS[1]
    assert history.to_dicts() == [to_dict(r) for r in RECORDS]
    assert History.parse(history.to_dicts()) == history


def test_history_steps_epochs_end():
    history = History([step(1, 5), epoch(1, 0.5), step(2, 15), CONTROL, HAND_STEP, epoch(2, 0.7), end(2)])
    assert history.steps == [step(1, 5), step(2, 15)] and history.controls == [CONTROL]
    assert [r.epoch for r in history.epochs] == [1, 2]
    assert history.end == end(2)
    assert History([step(), epoch(1, 0.5)]).end is None


def test_best_val_acc_ignores_missing_values():
    history = History([epoch(1, 0.5), epoch(2, None), epoch(3, 0.8), epoch(4, 0.7), epoch(5, None)])
    assert history.best_val_acc == 0.8
    assert history.epochs_since_best == 1  # epochs with a validation accuracy after the best
    assert History([epoch(1, None), step()]).best_val_acc is None
    assert History().best_val_acc is None


@pytest.mark.parametrize("accs, since", [([0.5, 0.6, 0.7], 0), ([0.7, 0.6, 0.5], 2), ([0.5, 0.7, 0.7, 0.6], 2),
                                         ([], 0), ([None, None], 0)])
def test_epochs_since_best(accs, since):
    assert History([epoch(i + 1, a) for i, a in enumerate(accs)]).epochs_since_best == since


def test_test_acc_and_images_per_s():
    history = History([epoch(1, 0.5, images_per_s=900.0), epoch(2, 0.6, images_per_s=1200.0)])
    assert history.test_acc is None and history.images_per_s == 1200.0
    history.append(end(2, test_acc=0.65))
    assert history.test_acc == 0.65 and history.images_per_s == 1200.0
    assert History([step()]).images_per_s is None


def test_until_epoch_drops_later_records_and_the_end():
    records = [step(1, 5), epoch(1, 0.5), step(2, 15), epoch(2, 0.7), step(3, 25), epoch(3, 0.6), end(3)]
    history = History(records)
    assert list(history.until_epoch(2)) == records[:4]
    assert list(history.until_epoch(0)) == []
    assert list(history.until_epoch(3)) == records[:6]  # the end record never survives a resume
    assert len(history) == 7  # the original is untouched
    assert isinstance(history.until_epoch(1), History)


def test_history_equality():
    assert History(RECORDS) == History(list(RECORDS))
    assert History(RECORDS) != History(RECORDS[:2])
    assert History(RECORDS) != RECORDS  # only a History equals a History
    assert History() == History()
