"""AppTest of a class, in its three roles: the teacher starts a class (link, QR code, limits), students join under
a name and train within the class's limits with their name on each run, the teacher's runs go first and the
teacher ends the class (archive); and a student cannot become the teacher through the URL or a widget."""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.access import new_key, owner_tag
from cnn_core.classroom import ClassStore
from cnn_core.runs import RunStatus, RunStore
from tests.conftest import APP, as_visitor, components

TOKEN = "the-teachers-secret-token-0123456789"


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "info", "error", "success", "subheader")
             for e in at.get(kind)]
    return " ".join(str(p) for p in parts)


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def board_component(at: AppTest) -> dict:
    """The data of the page's live class board (ui/class_board.py)."""
    [board] = components(at, "cnn_class_board")
    return json.loads(board.proto.json)


def board_data(root) -> dict:
    """The board as its stream sends it now (ui/board_view.py)."""
    from ui.board_view import BoardViews

    return BoardViews(RunStore(root), read_every=0).get(ClassStore(root).current()).data


@pytest.fixture
def school(studio, monkeypatch):
    monkeypatch.setenv("CNN_TEACHER_TOKEN", TOKEN)
    monkeypatch.setenv("CNN_EXECUTOR", "inline")
    return studio


def start_class(teacher_key: str, **limits) -> AppTest:
    at = as_visitor("pages/class.py", teacher_key, teacher=TOKEN)
    assert "Start a class" in texts(at)
    for name, value in limits.items():
        at.number_input(key=f"new_{name}").set_value(value)
    button(at, "start_class").click().run()
    assert not at.exception, at.exception
    return at


def test_the_teacher_starts_a_class_and_students_join_by_name(school):
    teacher = new_key()
    at = start_class(teacher)
    assert "is open" in texts(at) and "0 students joined" in texts(at)
    assert at.get("imgs") or at.get("image"), "the QR code"
    assert "/class" in texts(at)
    ann = as_visitor("pages/class.py", new_key())
    assert "Join the class" in texts(ann)
    ann.text_input(key="class_name").set_value("Ann")
    button(ann, "join_class").click().run()
    assert "You are **Ann**" in texts(ann)
    bob = as_visitor("pages/class.py", new_key())
    suggested = bob.text_input(key="class_name").value
    assert len(suggested.split()) == 2  # "blue otter"
    button(bob, "join_class").click().run()
    at = as_visitor("pages/class.py", teacher)  # the teacher again, by the cookie key, without the token
    assert "2 students joined" in texts(at) and "Ann" in texts(at) and suggested in texts(at)


def test_a_student_cannot_become_the_teacher_through_the_url_or_a_widget(school):
    teacher = new_key()
    start_class(teacher)
    mallory = new_key()
    for crafted in ({"teacher": "guess"}, {"teacher": TOKEN[:-1]}, {"teacher": ""}, {"teacher": TOKEN.upper()}):
        at = as_visitor("pages/class.py", mallory, **crafted)
        assert "Join the class" in texts(at) and "is open" not in texts(at), crafted
        assert not [b for b in at.button if b.key in ("end_class", "apply_limits", "start_class")]
    at = as_visitor("pages/class.py", mallory)
    at.text_input(key="class_name").set_value("teacher")  # the teacher's name as a display name
    button(at, "join_class").click().run()
    room = ClassStore(school.runs).current()
    assert room.name_of(owner_tag(mallory)) == "teacher 2" and room.teacher == owner_tag(teacher)
    before = ClassStore(school.runs).current()
    at = as_visitor("pages/class.py", mallory, teacher="guess")
    assert ClassStore(school.runs).current() == before  # nothing a student sent changed the class


def test_students_train_within_the_limits_with_their_names_and_the_teacher_ends_the_class(school):
    teacher = new_key()
    start_class(teacher, epochs=1)
    ann_key = new_key()
    ann = as_visitor("pages/class.py", ann_key)
    ann.text_input(key="class_name").set_value("Ann")
    button(ann, "join_class").click().run()
    train = as_visitor("pages/train.py", ann_key)
    train.selectbox(key="cfg_model").set_value("mlp")
    train.number_input(key="cfg_epochs").set_value(5)
    train.number_input(key="cfg_val_size").set_value(100)
    train.run()
    next(b for b in train.button if b.label == "Train").click().run()
    assert not train.exception, train.exception
    run_id = train.query_params["run"]
    store = RunStore(school.runs)
    run = store.read(run_id)
    assert run.config.epochs == 1 and run.name == "Ann" and run.meta["owner"] == owner_tag(ann_key)
    assert "by **Ann**" in texts(train)
    stranger = as_visitor("pages/train.py", new_key(), run=run_id)  # not joined: sees it (the board), no Cancel
    assert not [b for b in stranger.button if b.label == "Cancel run"]
    refused = as_visitor("pages/train.py", new_key())
    next(b for b in refused.button if b.label == "Train").click().run()
    assert "Join the class first" in " ".join(e.value for e in refused.error)
    deadline = time.monotonic() + 120
    while store.read(run_id).state.is_active and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.read(run_id).state is RunStatus.FINISHED

    board = as_visitor("pages/board.py", new_key())  # anyone in the room sees the class's runs together
    assert not board.exception, board.exception
    assert board_component(board)["url"] == "/api/class/board/events" and not board.get("plotly_chart")
    (row,) = board_data(school.runs)["runs"]  # what the board's stream sends the page
    assert (row["name"], row["model"], row["state"]) == ("Ann", "mlp", "finished") and row["test_acc"] > 0
    assert "epochs=1" in row["changes"] and row["epochs"] == [1] and len(row["val_acc"]) == 1

    mine = as_visitor("pages/train.py", ann_key, run=run_id)  # only the teacher puts a run on the projector
    assert not [b for b in mine.button if b.key == f"project_{run_id}"]
    pick = as_visitor("pages/train.py", teacher, run=run_id)
    button(pick, f"project_{run_id}").click().run()
    assert ClassStore(school.runs).current().projected == run_id
    projector = as_visitor("pages/board.py", new_key(), view="projector")
    assert not projector.exception, projector.exception
    assert any("Ann · mlp" in h.value for h in projector.header)
    assert len(projector.get("plotly_chart")) >= 2  # its curves and its confusion matrix; then the live board:
    assert board_component(projector) == {**board_component(board), "big": True, "projected": run_id}
    assert "display: none" in " ".join(str(h.proto) for h in projector.get("html"))  # no sidebar

    end = as_visitor("pages/class.py", teacher)
    button(end, "end_class").click().run()
    assert not end.exception, end.exception
    assert "The class ended" in texts(end)
    assert ClassStore(school.runs).current() is None
    archives = list((school.runs / ".class" / "archive").glob("*.zip"))
    assert len(archives) == 1
    import zipfile

    with zipfile.ZipFile(archives[0]) as z:
        assert f"runs/{run_id}/config.json" in z.namelist()
    again = as_visitor("pages/class.py", new_key())  # no class: nothing asks for a name
    assert "No class is running" in texts(again)


def test_the_class_moves_through_the_lessons_steps(school):
    teacher = new_key()
    at = as_visitor("pages/class.py", teacher, teacher=TOKEN)
    at.selectbox(key="class_lesson").set_value("Quick start — LeNet-5 + BN, one-cycle, 2 epochs")
    button(at, "start_class").click().run()
    at.radio(key="class_step").set_value("2. A learning rate far too high").run()
    assert not at.exception, at.exception
    assert ClassStore(school.runs).current().step == 1
    student = new_key()
    ann = as_visitor("pages/class.py", student)
    ann.text_input(key="class_name").set_value("Ann")
    button(ann, "join_class").click().run()
    ann = as_visitor("pages/class.py", student)  # her page again (AppTest drops the next click after st.rerun)
    assert "Step 2 of 5: A learning rate far too high" in texts(ann)
    assert "learning rate to 1" in texts(ann)
    button(ann, "setup_step").click().run()
    assert not ann.exception, ann.exception
    assert ann.title[0].value == "🏋️ Train"
    assert ann.number_input(key="cfg_lr").value == 1.0 and ann.selectbox(key="cfg_model").value == "lenet5_bn"


def test_a_student_shares_a_drawing_and_the_board_shows_it(school):
    from cnn_core.drawing import upscale_digit
    from tests.conftest import synthetic_digits

    start_class(new_key())
    student = new_key()
    ann = as_visitor("pages/class.py", student)
    ann.text_input(key="class_name").set_value("Ann")
    button(ann, "join_class").click().run()
    stranger = AppTest.from_file(APP, default_timeout=60)
    stranger.session_state["visitor_key"] = new_key()
    stranger.session_state["draw_image"] = upscale_digit(synthetic_digits(1, seed=5)[0][0])
    stranger.run()
    stranger = stranger.switch_page("pages/draw.py").run()
    assert stranger.metric and not [b for b in stranger.button if b.key == "share_drawing"]  # not joined: no share
    draw = AppTest.from_file(APP, default_timeout=60)
    draw.session_state["visitor_key"] = student
    draw.session_state["draw_image"] = upscale_digit(synthetic_digits(1, seed=5)[0][0])
    draw.run()
    draw = draw.switch_page("pages/draw.py").run()
    assert not draw.exception, draw.exception
    predicted = draw.metric[0].value
    button(draw, "share_drawing").click().run()
    (drawing,) = ClassStore(school.runs).wall()
    assert drawing.name == "Ann" and drawing.prediction == predicted
    (shared,) = board_data(school.runs)["wall"]
    assert (shared["name"], shared["prediction"]) == ("Ann", predicted) and shared["image"].startswith("data:image/png")
