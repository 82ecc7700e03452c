"""The learning path, as a new student walks it: Home → Data → Convolution lab → Train a lesson recipe → Inspect.

Only what a user sees is used: the page links at the bottom of each page, the Recipe selectbox, the Train
button, and the "Inspect this model" button under the finished run. The test has its own server (`fresh_app`,
its own runs folder), so that the run it trains does not show up in the other tests' runs folder; it opens
"/" first, as the shared `app` fixture does (a deep link to a fresh server would not run app.py).
"""

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect
from streamlit_ui import TIMEOUT_MS, choose, needs_page, open_page, screenshot, wait_idle

pytestmark = [needs_page(file) for file in ("home.py", "data.py", "conv_lab.py", "train.py", "inspect.py")]
RECIPE = "Course notebook: MLP — SGD 0.001, 3 epochs"
REPORTED = "74.48%"  # what the tutorial behind RECIPE reported (cnn_core/presets.py)
FIRST_VISIT_MS = 180_000  # the fresh server's first page imports torch and plotly; the machine may be busy
TRAIN_WITHIN_MS = 180_000  # 3 epochs of the MLP on 3,000 synthetic images take seconds; this allows a loaded machine


def follow(page, link_text: str, title: str) -> None:
    """Click the page link (in the page, not the sidebar) whose text starts with `link_text`; wait for the
    page titled `title` to have run."""
    link = page.get_by_test_id("stPageLink-NavLink").filter(has_text=re.compile(r"^\W*" + re.escape(link_text)))
    expect(link).to_have_count(1, timeout=TIMEOUT_MS)
    link.scroll_into_view_if_needed()
    link.click()
    expect(heading(page, title)).to_be_visible(timeout=TIMEOUT_MS)
    wait_idle(page)


def heading(page, title: str):
    """The page's title (its h1), exactly `title`."""
    return page.locator("h1").filter(has_text=re.compile(rf"^\s*{re.escape(title)}\s*$"))


def wait_chart(page, chart: str) -> None:
    """Wait until the first plotly chart matching `chart` has drawn at least one trace."""
    page.wait_for_function("(sel) => (document.querySelector(sel)?._fullData?.length || 0) > 0", arg=chart)


def run_id_in_url(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("run", [None])[0]


def status_on_disk(runs_dir: Path, run_id: str) -> dict:
    return json.loads((runs_dir / run_id / "status.json").read_text())


def no_errors_shown(page, where: str) -> None:
    exceptions = page.get_by_test_id("stException").all_inner_texts()
    assert not exceptions, f"{where} shows a traceback:\n" + "\n".join(exceptions)
    errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
    assert not errors, f"{where} shows an error: {errors}"


def test_a_new_student_goes_from_home_to_inspecting_a_trained_lesson_model(fresh_app, page, console_errors):
    runs_dir = Path(fresh_app.env["CNN_RUNS_DIR"])

    # Home → "Start here: the data" → Data.
    open_page(page, fresh_app.url, timeout_ms=FIRST_VISIT_MS)
    expect(heading(page, "🧠 CNN studio")).to_be_visible(timeout=TIMEOUT_MS)
    follow(page, "Start here: the data", "🔢 Data")
    no_errors_shown(page, "Data")

    # Data → its last link → the Convolution lab, which draws a plotly chart.
    follow(page, "Next: slide a kernel over an image in the Convolution lab", "🧮 Convolution lab")
    wait_chart(page, "[data-testid=stPlotlyChart] .js-plotly-plot")
    no_errors_shown(page, "Convolution lab")

    # Convolution lab → its last link → Train.
    follow(page, "Next: train a CNN that learns its own kernels", "🏋️ Train")

    # The lesson recipe fills the form; Train starts it and the URL gets its run id.
    choose(page, "Recipe", RECIPE)
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("mlp", timeout=TIMEOUT_MS)
    wait_idle(page)
    assert run_id_in_url(page) is None, "no run was started yet"
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_url(lambda url: bool(parse_qs(urlparse(url).query).get("run")))
    run_id = run_id_in_url(page)
    assert "-mlp-" in run_id, run_id

    # The live view says finished, and compares the reached accuracy with the tutorial's.
    finished = page.get_by_text(re.compile(rf"finished\s*·\s*{re.escape(run_id)}"))
    expect(finished).to_be_visible(timeout=TRAIN_WITHIN_MS)
    comparison = page.get_by_test_id("stCaptionContainer").filter(
        has_text=re.compile(rf"The tutorial behind this recipe reported {re.escape(REPORTED)} test accuracy; "
                            r"this run reached \d{1,3}\.\d\d%\."))
    expect(comparison).to_have_count(1, timeout=TIMEOUT_MS)
    status = status_on_disk(runs_dir, run_id)
    assert status["status"] == "finished"
    reached = f"{status['test_acc']:.2%}"
    expect(comparison).to_contain_text(f"this run reached {reached}.", timeout=TIMEOUT_MS)
    wait_idle(page)
    no_errors_shown(page, "Train")
    screenshot(page, "learning_path-train")

    # "Inspect this model" → Inspect with that run picked. An MLP has no conv layer: first-layer weights instead.
    inspect = page.get_by_role("button", name="Inspect this model")
    inspect.scroll_into_view_if_needed()
    inspect.click()
    expect(heading(page, "🔬 Inspect a model")).to_be_visible(timeout=TIMEOUT_MS)
    wait_idle(page)
    picker = page.get_by_role("combobox", name="Model", exact=True)
    expect(picker).to_have_value(f"run · {run_id}", timeout=TIMEOUT_MS)
    kernels = page.get_by_role("tab", name="Kernels", exact=True)
    expect(kernels).to_have_attribute("aria-selected", "true", timeout=TIMEOUT_MS)  # the first tab, open
    expect(page.get_by_text("has no conv layer, so no kernels")).to_be_visible(timeout=TIMEOUT_MS)
    wait_chart(page, ".st-key-templates .js-plotly-plot")  # the first-layer weights, one image per unit
    no_errors_shown(page, "Inspect")
    screenshot(page, "learning_path-inspect")
    assert not console_errors, console_errors
