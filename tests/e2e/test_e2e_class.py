"""A class in real browsers, three at once: the teacher (a desktop), Ann and Bob (phones). Names on runs, fair
turns (Ann's second run waits for Bob's first), both students' runs appearing live on the board, and the
projector following the teacher's pick."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from cnn_core.runs import RunStatus

from tests.e2e.conftest import REPO, TIMEOUT_MS, Server, open_page

TOKEN = "e2e-teacher-token-4f1c9a7d2b"
PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)


@pytest.fixture
def class_app(app_env, tmp_path):
    env = {**app_env, "CNN_RUNS_DIR": str(tmp_path / "runs"), "CNN_TEACHER_TOKEN": TOKEN}
    server = Server(REPO / "app.py", env, tmp_path / "streamlit.log").start()
    yield server, tmp_path / "runs"
    server.stop()


def settle(page) -> None:
    """Let the page's script run end before the next click (a click during a rerun can be lost)."""
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=TIMEOUT_MS)
    time.sleep(0.5)


def statuses(runs: Path) -> dict[str, dict]:
    out = {}
    for folder in runs.iterdir():
        if (folder / "status.json").exists() and (folder / "run.json").exists():
            out[folder.name] = {**json.loads((folder / "status.json").read_text()),
                                **json.loads((folder / "run.json").read_text())}
    return out


def join(context, url: str, name: str):
    page = context.new_page()
    open_page(page, f"{url}/class")
    expect(page.get_by_text("Join the class")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    box = page.locator("input[aria-label='Your name for the class']")
    box.fill(name)
    box.press("Enter")
    settle(page)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_text(f"You are {name}")).to_be_visible(timeout=TIMEOUT_MS)
    return page


def train(page, url: str) -> None:
    """Press Train on the Train page with the tiny-run settings (a phone: the form is one column, folded into
    "Train settings" under the run once there is one: opened first)."""
    if "/train" not in page.url:
        open_page(page, f"{url}/train")
        settle(page)
    folded = page.locator(".st-key-train_settings details").first
    if folded.count() and folded.get_attribute("open") is None:
        folded.locator("summary").first.click()
        settle(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile(r"by Ann|by Bob|by teacher"))).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)


def test_a_class_of_two_students_and_a_teacher(class_app, browser):
    server, runs = class_app
    url = server.url
    teacher_ctx, ann_ctx, bob_ctx = (browser.new_context(viewport={"width": 1400, "height": 1000}),
                                     browser.new_context(**PHONE), browser.new_context(**PHONE))
    try:
        teacher = teacher_ctx.new_page()
        open_page(teacher, url)
        open_page(teacher, f"{url}/class?teacher={TOKEN}")
        expect(teacher.get_by_role("button", name="Start the class")).to_be_visible(timeout=TIMEOUT_MS)
        settle(teacher)
        at_once = teacher.locator("input[aria-label='Runs training at once']")
        at_once.fill("1")
        at_once.press("Enter")
        settle(teacher)
        teacher.get_by_role("button", name="Start the class").click()
        expect(teacher.get_by_text("students joined")).to_be_visible(timeout=TIMEOUT_MS)

        ann, bob = join(ann_ctx, url, "Ann"), join(bob_ctx, url, "Bob")

        # the teacher's long run holds the class's one slot while the students queue
        open_page(teacher, f"{url}/train")
        settle(teacher)
        epochs = teacher.locator("input[aria-label='Epochs']")
        epochs.fill("100")
        epochs.press("Enter")
        settle(teacher)
        teacher.get_by_test_id("stSelectbox").filter(has_text="Batch size").click()
        teacher.get_by_role("option", name="16", exact=True).click()
        settle(teacher)
        teacher.get_by_test_id("stSelectbox").filter(has_text="Model").first.click()
        teacher.get_by_role("option", name="bn_cnn4", exact=True).click()  # minutes: longer than the class's clicks
        settle(teacher)
        train(teacher, url)
        board = bob_ctx.new_page()  # Bob watches the board: it must update without a reload
        open_page(board, f"{url}/board")
        train(ann, url)
        first_of_ann = ann.url.split("run=")[1]
        train(ann, url)  # Ann presses Train again: her second run waits …
        expect(board.get_by_text("Ann · ").first).to_be_visible(timeout=TIMEOUT_MS)
        train(bob, url)  # … behind Bob's first
        expect(board.get_by_text("Bob · ").first).to_be_visible(timeout=TIMEOUT_MS)

        # the teacher puts Ann's run on the projector; the projector view follows
        projector = teacher_ctx.new_page()
        open_page(projector, f"{url}/board?view=projector")
        open_page(teacher, f"{url}/train?run={first_of_ann}")
        settle(teacher)
        teacher.get_by_role("button", name="Put on the projector").click()
        expect(projector.get_by_text(re.compile(r"📽️ Ann · "))).to_be_visible(timeout=TIMEOUT_MS)
        assert projector.locator("[data-testid=stSidebar]").is_hidden()

        # the teacher stops their run: the students' runs start in fair turns
        teacher_run = next(r for r, s in statuses(runs).items() if s.get("name") == "teacher")
        open_page(teacher, f"{url}/train?run={teacher_run}")
        settle(teacher)
        teacher.get_by_role("button", name="Cancel run").click()  # still training
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            students = {r: s for r, s in statuses(runs).items() if s.get("name") in ("Ann", "Bob")}
            if len(students) == 3 and not any(RunStatus(s["status"]).is_active for s in students.values()):
                break
            time.sleep(0.5)
        students = sorted(students.values(), key=lambda s: s["started"])
        assert [s["name"] for s in students] == ["Ann", "Bob", "Ann"], students  # first come would be Ann, Ann, Bob
        assert all(s["status"] == RunStatus.FINISHED for s in students), students
    finally:
        for context in (teacher_ctx, ann_ctx, bob_ctx):
            context.close()
