"""Real-browser fixtures: the app served on a loopback port, Debian's Chromium driven by Playwright.

`app` serves app.py with a temporary runs folder, small synthetic data sets and the repo's pretrained
checkpoints; `page` is a fresh browser tab that records console errors and, when its test fails,
leaves a screenshot in artifacts/e2e/. Without Chromium the suite skips loudly (fails when CI=true).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from urllib.parse import urlparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from streamlit_ui import ARTIFACTS, REPO, TIMEOUT_MS, open_page

from tests.conftest import free_port, stop_process

if str(REPO) not in sys.path:  # `tests.conftest` (the synthetic data sets) is imported from the repo root
    sys.path.insert(0, str(REPO))

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_S = 120  # a cold start imports torch and plotly; on a busy 2-core machine that takes a while
SERVER_STOP_S = 10


def find_chromium() -> str | None:
    """$CHROMIUM when set (only it), else /usr/bin/chromium, else `chromium` on the PATH."""
    explicit = os.environ.get("CHROMIUM")
    candidates = [explicit] if explicit else ["/usr/bin/chromium", shutil.which("chromium")]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


CHROMIUM = find_chromium()
NO_CHROMIUM = ("Chromium not found ($CHROMIUM, else /usr/bin/chromium, else `chromium` on the PATH): the browser tests "
               "in tests/e2e did NOT run. Install it with `make browser` (as root: apt-get install chromium).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "latency: browser latency figures (slow); deselect with -m 'not latency'")


@pytest.fixture(scope="session", autouse=True)
def _chromium_or_skip() -> None:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(NO_CHROMIUM + " CI=true: failing instead of skipping.", pytrace=False)
        pytest.skip(NO_CHROMIUM)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if CHROMIUM is None:
        terminalreporter.write_sep("!", "BROWSER TESTS (tests/e2e) DID NOT RUN", red=True, bold=True)
        terminalreporter.write_line(NO_CHROMIUM, red=True, bold=True)
        terminalreporter.write_sep("!", red=True, bold=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so that `page` knows at teardown whether its test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@dataclass
class Server:
    """One `streamlit run` child process on a loopback port."""

    script: Path
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        command = [sys.executable, "-m", "streamlit", "run", str(self.script.relative_to(REPO)),
                   "--server.headless", "true", "--server.port", str(self.port), "--server.address", "127.0.0.1",
                   "--browser.gatherUsageStats", "false",
                   # a snapshot of the code: others' edits mid-run must not rerun pages or swap the navigation
                   "--server.fileWatcherType", "none"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"{self.script.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"{self.script.name} not healthy after {SERVER_START_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, SERVER_STOP_S)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


@dataclass
class App:
    """The served app and the folders it reads and writes."""

    server: Server
    data_dir: Path
    runs_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "CNN_CHECKPOINTS_DIR": str(REPO / "checkpoints"), "PYTHONUNBUFFERED": "1", **extra}
    return env


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> dict[str, str]:
    """The app's environment: synthetic 'mnist' and 'fashion-mnist' (checksums off), an empty runs folder."""
    from tests.conftest import write_dataset  # the unit tests' synthetic idx files (bars, one row per class)

    root = tmp_path_factory.mktemp("e2e_app")
    write_dataset(root / "data" / "mnist", n_train=3000, n_test=500)
    write_dataset(root / "data" / "fashion-mnist", n_train=3000, n_test=500, gz=True)
    return _env(CNN_DATA_DIR=str(root / "data"), CNN_DATA_VERIFY="0", CNN_RUNS_DIR=str(root / "runs"))


@pytest.fixture(scope="session")
def app(app_env, browser) -> App:
    """app.py served on a free loopback port, opened once at "/" before any test.

    That first visit runs app.py's st.navigation: a fresh server whose first visitor deep-links to a page
    runs that page alone (see test_a_deep_link_to_a_fresh_server_runs_app_py). It also pays the cold start."""
    log = Path(app_env["CNN_RUNS_DIR"]).parent / "streamlit.log"
    server = Server(REPO / "app.py", app_env, log).start()
    context = browser.new_context()
    try:
        open_page(context.new_page(), server.url, timeout_ms=SERVER_START_S * 1000)
    finally:
        context.close()
    yield App(server, Path(app_env["CNN_DATA_DIR"]), Path(app_env["CNN_RUNS_DIR"]))
    server.stop()


@pytest.fixture
def start_fresh_app(app_env, tmp_path):
    """Starts another app.py server (same data, its own runs folder) that no browser has visited yet.

    `start(prepare)`: `prepare(runs_dir)`, when given, fills that runs folder before the server starts."""
    servers = []

    def start(prepare: Callable[[Path], object] | None = None) -> Server:
        runs_dir = tmp_path / "runs"
        if prepare is not None:
            prepare(runs_dir)
        env = {**app_env, "CNN_RUNS_DIR": str(runs_dir)}
        servers.append(Server(REPO / "app.py", env, tmp_path / "streamlit.log"))
        return servers[-1].start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fresh_app(start_fresh_app) -> Server:
    """Another app.py server (same data, its own empty runs folder) that no browser has visited yet."""
    return start_fresh_app()


@pytest.fixture(scope="session")
def floor_app(tmp_path_factory) -> Server:
    """tests/e2e/floor_app.py (canvas → pretrained LeNet → st.metric, nothing else) on another port."""
    root = tmp_path_factory.mktemp("e2e_floor")
    server = Server(Path(__file__).with_name("floor_app.py"), _env(), root / "streamlit.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


# The frontend, opened at a page's path (/draw), first looks for the server under that path: two 404s
# (/draw/_stcore/health, /draw/_stcore/host-config) before it finds it at the root. Harmless, not an app error.
BASE_PATH_PROBES = ("/_stcore/health", "/_stcore/host-config")


def _benign(message) -> bool:
    path = urlparse((message.location or {}).get("url", "")).path
    return "404" in message.text and path.endswith(BASE_PATH_PROBES) and not path.startswith("/_stcore/")


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of the `page` fixture's tab, as text."""
    return []


PHONE = dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)  # a phone held upright


def _tab(browser, console_errors, request, **options):
    """A tab in a fresh browser context that records console errors; a screenshot when its test fails."""
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.on("console", lambda m: console_errors.append(f"console.{m.type}: {m.text} ({(m.location or {}).get('url')})")
           if m.type == "error" and not _benign(m) else None)
    tab.on("pageerror", lambda e: console_errors.append(f"uncaught: {e}"))
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"FAILED-{request.node.name.replace('/', '_')}.png"
        try:
            tab.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of the failure: {shot}")
        except Exception as e:  # a dead tab must not hide the test's own failure
            print(f"\nno screenshot: {e}")
    context.close()


@pytest.fixture
def page(browser, console_errors, request):
    yield from _tab(browser, console_errors, request, viewport={"width": 1400, "height": 1000})


@pytest.fixture
def phone(browser, console_errors, request):
    """A tab on a phone: 390x844 CSS pixels, a touch screen and no mouse."""
    yield from _tab(browser, console_errors, request, **PHONE)
