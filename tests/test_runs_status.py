"""RunStatus: which states are active, final, successful or resumable; icons; parsing what status.json holds."""

import json

import pytest

from cnn_core.runs.status import ACTIVE, RunStatus

ACTIVE_STATES = {RunStatus.QUEUED, RunStatus.RUNNING}
RESUMABLE = {RunStatus.STOPPED, RunStatus.INTERRUPTED, RunStatus.FAILED}


@pytest.mark.parametrize("status", list(RunStatus))
def test_each_status_is_active_final_or_unreadable(status):
    assert status.is_active == (status in ACTIVE_STATES)
    assert status.is_final == (status not in ACTIVE_STATES and status is not RunStatus.UNREADABLE)
    assert not (status.is_active and status.is_final)


def test_active_tuple_is_queued_and_running():
    assert set(ACTIVE) == ACTIVE_STATES


@pytest.mark.parametrize("status", list(RunStatus))
def test_succeeded_and_resumable(status):
    assert status.succeeded == (status in (RunStatus.FINISHED, RunStatus.EARLY_STOPPED))
    assert status.resumable == (status in RESUMABLE)
    assert not (status.succeeded and status.resumable)
    if status.resumable or status.succeeded:
        assert status.is_final


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_status_has_an_icon(status):
    assert isinstance(status.icon, str) and status.icon.strip()


@pytest.mark.parametrize("status", list(RunStatus))
def test_parse_reads_the_stored_value(status):
    assert RunStatus.parse(status.value) is status
    assert RunStatus.parse(status) is status


@pytest.mark.parametrize("value", [None, "", "Running", "done", 3, ["running"], {"status": "running"}])
def test_parse_of_anything_else_is_unreadable(value):
    assert RunStatus.parse(value) is RunStatus.UNREADABLE


def test_values_are_the_plain_strings_of_status_json():
    stored = json.dumps({"status": RunStatus.EARLY_STOPPED})
    assert stored == '{"status": "early_stopped"}'
    back = RunStatus.parse(json.loads(stored)["status"])
    assert back is RunStatus.EARLY_STOPPED and back == "early_stopped" and str(back) == "early_stopped"
    assert {s.value for s in RunStatus} == {"queued", "running", "finished", "early_stopped", "stopped", "cancelled",
                                          "diverged", "interrupted", "failed", "unreadable"}
