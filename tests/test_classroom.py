"""cnn_core.classroom: the teacher's token, joining under a name, class limits, the end of a class; and the
access rule while a class is in progress."""

import json
import zipfile

import pytest

from cnn_core.access import Visitor, owner_tag, server_access
from cnn_core.classroom import (ClassLimits, ClassStore, clean_name, is_teacher_token, random_name,
                                teacher_token)
from cnn_core.config import ConfigError, TrainConfig
from tests.hammer import failures, hammer

TEACHER, ANN, BOB = owner_tag("teacher-key"), owner_tag("ann-key"), owner_tag("bob-key")


def test_the_teacher_token_is_made_once_kept_private_and_compared_exactly(tmp_path, monkeypatch):
    monkeypatch.delenv("CNN_TEACHER_TOKEN", raising=False)
    token = teacher_token(tmp_path)
    assert len(token) >= 32 and teacher_token(tmp_path) == token
    assert oct((tmp_path / ".class" / "teacher-token").stat().st_mode & 0o777) == "0o600"
    assert is_teacher_token(tmp_path, token)
    for wrong in ("", token[:-1], token + "x", None, ["list"], token.upper() if token != token.upper() else "x"):
        assert not is_teacher_token(tmp_path, wrong)
    monkeypatch.setenv("CNN_TEACHER_TOKEN", "set-by-the-school")
    assert is_teacher_token(tmp_path, "set-by-the-school") and not is_teacher_token(tmp_path, token)


def test_joining_names_are_cleaned_and_unique(tmp_path):
    store = ClassStore(tmp_path)
    with pytest.raises(ConfigError, match="No class is in progress"):
        store.join(ANN, "Ann")
    store.start(TEACHER)
    assert store.join(ANN, "  Ann \n\t Lee ") == "Ann Lee"
    assert store.join(BOB, "ann lee") == "ann lee 2"  # another student has it
    assert store.join(owner_tag("c"), "Teacher") == "Teacher 2"
    assert store.join(ANN, "Ann") == "Ann"  # renaming oneself
    room = store.current()
    assert room.name_of(ANN) == "Ann" and room.name_of(TEACHER) == "teacher" and room.name_of(owner_tag("x")) is None
    with pytest.raises(ConfigError, match="Type a name"):
        clean_name(" \u200b\n ")
    assert len(clean_name("x" * 100)) == 24
    adjective, animal = random_name().split()
    assert adjective and animal


def test_thirty_students_joining_at_once_are_all_kept(tmp_path):
    store = ClassStore(tmp_path)
    store.start(TEACHER)
    results = hammer([lambda i=i: ClassStore(tmp_path).join(owner_tag(f"s{i}"), f"student {i}") for i in range(30)],
                     threads=8)
    assert not failures(results), failures(results)
    assert len(store.current().students) == 30  # no join lost to another's read-modify-write


def test_class_limits_clamp_epochs_and_refuse_what_cannot_fit():
    limits = ClassLimits(max_epochs=2, models=("mlp", "lenet5_bn"), max_parameters=80_000)
    config, notes = limits.apply(TrainConfig(model="lenet5_bn", epochs=10))
    assert config.epochs == 2 and "Epochs set to 2" in notes[0]
    with pytest.raises(ConfigError, match="the models are mlp, lenet5_bn"):
        limits.apply(TrainConfig(model="bn_cnn4"))
    with pytest.raises(ConfigError, match="parameters; the class allows 1,000"):
        ClassLimits(max_parameters=1000).apply(TrainConfig(model="mlp"))
    with pytest.raises(ConfigError, match="Max epochs"):
        ClassLimits(max_epochs=0).check()


def test_ending_a_class_archives_its_runs_and_closes_it(tmp_path):
    store = ClassStore(tmp_path)
    room = store.start(TEACHER, lesson="Quick start", limits=ClassLimits(max_epochs=3))
    run = tmp_path / "20261204-100000-mlp-aaaaaaaa"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig().to_dict()))
    (run / "metrics.jsonl").write_text("{}\n")
    archive = store.end([run])
    assert archive.name == f"{room.id}.zip" and store.current() is None
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {"class.json", f"runs/{run.name}/config.json", f"runs/{run.name}/metrics.jsonl"} <= names
        assert json.loads(z.read("class.json"))["lesson"] == "Quick start"
    assert not list(archive.parent.glob("*.partial"))


def test_the_access_rule_in_a_class(tmp_path, monkeypatch):
    monkeypatch.delenv("CNN_HOSTED", raising=False)
    assert server_access(tmp_path).mode == "local"
    ClassStore(tmp_path).start(TEACHER)
    rule = server_access(tmp_path)
    assert rule.mode == "class" and rule.private
    ann, bob, teacher = Visitor(key="ann-key"), Visitor(key="bob-key"), Visitor(key="teacher-key", teacher=True)
    anns_run = {"owner": ANN}
    assert rule.lists(ann, anns_run) and rule.can_act(ann, anns_run)
    assert not rule.lists(bob, anns_run) and not rule.can_act(bob, anns_run)  # Bob sees it on the board only
    assert rule.can_read(bob, "r", anns_run)
    assert rule.can_act(teacher, anns_run)
    ClassStore(tmp_path).end([])
    assert server_access(tmp_path).mode == "local"


def test_the_board_ranks_the_class_runs_and_says_what_each_changed(tmp_path):
    from cnn_core.classroom import board
    from cnn_core.presets import PRESETS
    from cnn_core.runs import EndRecord, EpochRecord, RunStatus, RunStore

    lesson = next(iter(PRESETS))
    room = ClassStore(tmp_path).start(TEACHER, lesson=lesson)
    store = RunStore(tmp_path)
    recipe = PRESETS[lesson].config

    def run(owner, name, test_acc, class_id=room.id, **changes):
        import dataclasses

        run_id = store.create(dataclasses.replace(recipe, **changes), owner, name=name, **{"class": class_id})
        store.append(run_id, EpochRecord(1, 10, 1.0, 0.5, 0.8, 0.5, test_acc - 0.01, 1e-3, 1.0, 100.0))
        if test_acc:
            store.append(run_id, EndRecord(1, 10, 1.1, RunStatus.FINISHED, 0.4, test_acc, 1.1))
        return run_id

    ann = run(ANN, "Ann", 0.91, lr=0.01)
    teach = run(TEACHER, "teacher", 0.95)
    run(BOB, "Bob", 0.99, class_id="another-class")  # not this class
    entries = board(store.list(), room)
    assert [e.run_id for e in entries] == [teach, ann]
    assert entries[0].teacher and entries[0].changes == "the lesson's recipe"
    assert entries[1].changes == "lr=0.01" and entries[1].val_acc == [0.9] and entries[1].epochs == [1]


def test_a_lesson_in_steps_each_a_valid_config_and_the_class_moves_through_them(tmp_path):
    from cnn_core.classroom import lesson_steps
    from cnn_core.presets import PRESETS

    for lesson in [None, *PRESETS]:
        steps = lesson_steps(lesson)
        assert len(steps) >= 4 and steps[0].changes == {}
        for step in steps:
            assert step.try_this and step.config(lesson).validate()
    lesson = next(iter(PRESETS))
    too_high = lesson_steps(lesson)[1]
    assert too_high.config(lesson).lr == 1.0 and too_high.config(lesson).model == PRESETS[lesson].config.model
    store = ClassStore(tmp_path)
    store.start(TEACHER, lesson=lesson)
    assert store.current().step == 0
    assert store.set_step(2).step == 2 and store.current().step == 2
    with pytest.raises(ConfigError, match="steps 1 to"):
        store.set_step(99)


def test_the_drawing_wall_keeps_shared_drawings_until_the_class_ends(tmp_path):
    import numpy as np

    store = ClassStore(tmp_path)
    store.start(TEACHER)
    with pytest.raises(ConfigError, match="Join the class first"):
        store.share_drawing(ANN, np.zeros((28, 28)), "3", 0.5, "mlp")
    store.join(ANN, "Ann")
    image = np.linspace(0, 1, 28 * 28).reshape(28, 28)
    first = store.share_drawing(ANN, image, "7", 0.91, "lenet5_bn")
    second = store.share_drawing(ANN, image * 0, "1", 0.4, "lenet5_bn")
    wall = store.wall()
    assert [d.id for d in wall] == [second.id, first.id]  # newest first
    assert wall[1].name == "Ann" and wall[1].prediction == "7" and np.array(wall[1].pixels).shape == (28, 28)
    assert np.array(wall[1].pixels).max() == 255 and np.array(wall[0].pixels).max() == 0
    archive = store.end([])
    with zipfile.ZipFile(archive) as z:
        assert sum(name.startswith("wall/") for name in z.namelist()) == 2
    store.start(TEACHER)
    assert store.wall() == []  # a new class, a clean wall
