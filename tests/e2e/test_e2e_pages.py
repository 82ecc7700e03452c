"""Every page of the navigation opens in a real browser without an exception or a console error, and a deep
link that is a fresh server's first visit shows the full app (app.py's navigation and sidebar), not the page alone."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect
from streamlit_ui import REPO, TIMEOUT_MS, open_page

from tests.conftest import finished_runs

from cnn_core.runs import RunStatus, RunStore

# url path → (page file, a word of its title); the paths are st.navigation's, taken from the file names.
PAGES = {
    "": ("home.py", "CNN studio"),
    "data": ("data.py", "Data"),
    "conv_lab": ("conv_lab.py", "Convolution lab"),
    "train": ("train.py", "Train"),
    "runs": ("runs.py", "Runs"),
    "inspect": ("inspect.py", "Inspect"),
    "draw": ("draw.py", "Draw"),
    "examples": ("examples.py", "Your examples"),
    "class": ("class.py", "Class"),
    "board": ("board.py", "Class board"),
}
PRESENT = {path: spec for path, spec in PAGES.items() if (REPO / "pages" / spec[0]).exists()}


def test_sidebar_links_are_the_expected_url_paths(app, page):
    open_page(page, app.url)
    hrefs = page.get_by_test_id("stSidebarNavLink").evaluate_all("links => links.map(a => a.href)")
    paths = sorted(href.removeprefix(app.url).strip("/") for href in hrefs)
    assert paths == sorted(PRESENT), f"the navigation links to {paths}, expected {sorted(PRESENT)}"


@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p or "home")
def test_page_loads_cleanly(app, page, console_errors, path):
    file, title = PAGES[path]
    if path not in PRESENT:
        pytest.skip(f"pages/{file} does not exist yet")
    open_page(page, f"{app.url}/{path}")
    assert title in page.locator("h1").first.inner_text()
    exceptions = page.get_by_test_id("stException").all_inner_texts()
    assert not exceptions, f"/{path} shows a traceback:\n" + "\n".join(exceptions)
    errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
    assert not errors, f"/{path} shows an error: {errors}"
    assert not console_errors, f"/{path} logged console errors: {console_errors}"


NAV_JS = "() => Array.from(document.querySelectorAll('[data-testid=stSidebarNavLink]'), a => a.innerText.trim())"
SECTIONS_JS = "() => Array.from(document.querySelectorAll('[data-testid=stNavSectionHeader]'), h => h.innerText.trim())"
# app.py's navigation: each page's title in the sidebar, in order, and the section headers above them
NAV_TITLES = {"": "Home", "data": "Data", "conv_lab": "Convolution lab", "train": "Train", "runs": "Runs",
              "inspect": "Inspect", "draw": "Draw", "examples": "Your examples", "class": "Class",
              "board": "Class board"}
SECTIONS = ["Learn", "Build", "Explore", "Teach"]
# A fresh server's first visitor arrives at one of these; {run}: a finished run, {a},{b}: two runs that are
# not the Runs page's default pair (its two newest), so that the compare view shows the query string's runs.
DEEP_LINKS = ["draw", "examples", "inspect", "data", "conv_lab", "runs", "class", "train?run={run}", "runs?compare={a},{b}"]


@pytest.mark.parametrize("link", DEEP_LINKS, ids=lambda link: link.split("{")[0].rstrip("=?,").replace("?", "-"))
def test_a_deep_link_to_a_fresh_server_shows_the_full_app(start_fresh_app, page, console_errors, link):
    """Before any session has run app.py's st.navigation, Streamlit takes a pages/ folder beside app.py for a
    pages-folder app: a first visit to /draw ran pages/draw.py alone (file-name navigation with an "app" entry,
    no page config, no sidebar status). Each page now goes through app.py first (ui/navigation.py)."""
    path = link.split("?")[0]
    file, title = PAGES[path]
    if path not in PRESENT:
        pytest.skip(f"pages/{file} does not exist yet")
    server = start_fresh_app(finished_runs)
    runs = [run.id for run in RunStore(Path(server.env["CNN_RUNS_DIR"])).list()]  # newest first, as /runs lists
    run, a, b = runs[0], runs[2], runs[1]
    link = link.format(run=run, a=a, b=b)
    query = urlparse(link).query
    open_page(page, f"{server.url}/{link}")

    # app.py ran: its sectioned navigation of page titles (no "app" entry), its sidebar status once
    links = [re.sub(r"^\W+", "", " ".join(text.split())) for text in page.evaluate(NAV_JS)]  # less the icon
    assert "app" not in links, f"/{link}: the navigation lists app.py itself (a pages-folder app): {links}"
    expected = [NAV_TITLES[p] for p in NAV_TITLES if p in PRESENT]
    assert links == expected, f"/{link}: the navigation is {links}, expected app.py's {expected}"
    sections = page.evaluate(SECTIONS_JS)
    assert sections == SECTIONS, f"/{link}: the navigation's sections are {sections}, expected {SECTIONS}"
    assert page.get_by_text("Device:").count() == 1, f"/{link}: app.py's sidebar status is not shown once"
    # … and then the page that was asked for, with its query string
    assert title in page.locator("h1").first.inner_text(), f"/{link} shows {page.locator('h1').all_inner_texts()}"
    assert parse_qs(urlparse(page.url).query) == parse_qs(query), f"/{link}: the page's URL is now {page.url}"
    if path == "train" and query:
        expect(page.get_by_text(re.compile(rf"finished\s*·\s*{re.escape(run)}"))).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator(f".st-key-curves_{run} .js-plotly-plot")).to_have_count(1, timeout=TIMEOUT_MS)
    if path == "runs" and query:
        chosen = page.get_by_test_id("stMultiSelect").filter(has_text="Compare runs")
        expect(chosen.get_by_text(f"{a} ({RunStatus.FINISHED.icon} finished)")).to_be_visible(timeout=TIMEOUT_MS)
        expect(chosen.get_by_text(f"{b} ({RunStatus.FINISHED.icon} finished)")).to_be_visible(timeout=TIMEOUT_MS)
        expect(chosen.get_by_text(f"{run} ({RunStatus.FINISHED.icon} finished)")).to_have_count(0, timeout=TIMEOUT_MS)
        traces = "() => document.querySelector('.st-key-overlay .js-plotly-plot')?._fullData?.map(t => t.name)"
        page.wait_for_function(f"() => ({traces})()?.length > 0")
        drawn = sorted({name.split()[0] for name in page.evaluate(traces)})  # "<id> (<model>)"
        assert drawn == sorted([a, b]), "the overlay does not draw the runs asked for"
    exceptions = page.get_by_test_id("stException").all_inner_texts()
    assert not exceptions, f"/{link} shows a traceback:\n" + "\n".join(exceptions)
    assert not console_errors, f"/{link} logged console errors: {console_errors}"
