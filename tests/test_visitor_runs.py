"""The Gradio twin's runs: each visitor's in a folder named by their key's hash, reached by the key only."""

import os
import time

from cnn_core.access import new_key, owner_tag
from cnn_core.visitor_runs import VisitorRuns
from tests.conftest import save_tiny

ALICE, BOB = new_key(), new_key()


def test_a_visitor_sees_their_own_runs_newest_first_and_never_anothers(tmp_path):
    runs = VisitorRuns(tmp_path)
    first = save_tiny(runs.new_path(ALICE, "custom"))
    time.sleep(1.1)  # run ids are to the second
    second = save_tiny(runs.new_path(ALICE, "custom"))
    assert first.parent == tmp_path / owner_tag(ALICE) and ALICE not in str(first)  # only the key's hash on disk
    mine = runs.runs(ALICE)
    assert [r.path for r in mine] == [second, first] and mine[0].label.startswith("your run · ")
    assert runs.runs(BOB) == [] and runs.find(BOB, mine[0].id) is None and runs.find(ALICE, mine[0].id) == mine[0]
    for bad in (None, "short", "../" + ALICE):
        assert runs.runs(bad) == [] and runs.find(bad, mine[0].id) is None
    for bad_id in ("../x", str(first), first.name, ""):
        assert runs.find(ALICE, bad_id) is None


def test_old_runs_and_runs_beyond_the_newest_few_are_deleted_when_listed(tmp_path):
    runs = VisitorRuns(tmp_path, max_age_s=3600, keep=2)
    paths = []
    for i in range(4):
        path = runs.new_path(ALICE, "custom")
        path = path.with_name(f"2026120{i + 1}-120000-custom-abcde{i}.safetensors")
        paths.append(save_tiny(path))
    old = time.time() - 7200
    os.utime(paths[3], (old, old))  # the newest by name, but its file is two hours old
    assert [r.path for r in runs.runs(ALICE)] == [paths[2], paths[1]]
    assert not paths[3].exists() and not paths[0].exists()
    (paths[1].parent / ".20261209-120000-custom-abcdef.safetensors.part").write_bytes(b"half")
    assert len(runs.runs(ALICE)) == 2  # a file being written is not a run
