"""The exported web page (cnn_core/webpage.py) in Chromium, opened as a file as from a USB stick: the mouse draws,
the page predicts (as it does served by a static host, as the static Space, or by the app from the Draw page's
link); and on a few dozen drawings its JS preprocessing + onnxruntime-web give the server's answers
(cnn_core.live.analyse_drawing): the same model input, the same class, the same probabilities and maps.

Needs onnxruntime-web vendored (`make web`, which `make test` runs): skipped loudly without it, failed under CI=true.
"""

import base64
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit_ui import MNIST_MODEL, ONE, REPO, ZERO, choose, needs_page, open_page, screenshot, wait_idle
from web_ui import analyse_on_page, clear, draw, open_web_page, prediction, serve_folder

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cnn_core.checkpoints import load_checkpoint  # noqa: E402
from cnn_core.live import analyse_drawing  # noqa: E402
from cnn_core.webpage import NO_RUNTIME, export_web, runtime_version  # noqa: E402
from tests.web_drawings import drawings, random_strokes  # noqa: E402

CHECKPOINTS = REPO / "checkpoints"
MNIST = CHECKPOINTS / "lenet5_bn-mnist.safetensors"
FASHION = CHECKPOINTS / "lenet5_bn-fashion-mnist.safetensors"


@pytest.fixture(scope="module", autouse=True)
def _runtime_or_skip():
    if runtime_version() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{NO_RUNTIME} (CI=true: failing instead of skipping)", pytrace=False)
        pytest.skip(f"THE WEB PAGE TESTS DID NOT RUN: {NO_RUNTIME}")


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[Path, Path]:
    """checkpoint → its exported page (default layer: the first conv layer's maps)."""
    folder = tmp_path_factory.mktemp("web")
    return {ckpt: export_web(ckpt, folder) for ckpt in (MNIST, FASHION)}


def test_mouse_drawings_are_read_on_the_page_opened_as_a_file(page, pages, console_errors):
    url = pages[MNIST].as_uri()  # file://: the page fetches nothing, so it works without any server
    open_web_page(page, url)
    assert page.locator("#status").inner_text().startswith("Draw a digit")
    draw(page, ONE)
    assert prediction(page) == "1"
    assert "% sure" in page.locator("#status").inner_text()
    screenshot(page, "web_page")
    clear(page)
    draw(page, ZERO)
    assert prediction(page) == "0"
    assert page.locator("#maps canvas").count() == 6  # conv1's six maps
    assert not console_errors, console_errors


def test_the_static_space_serves_the_page_over_http(page, tmp_path, console_errors):
    """`make space-static`'s folder on a plain static web server: index.html draws and predicts."""
    sys.path.insert(0, str(REPO / "deploy" / "space"))
    import assemble  # deploy/space/assemble.py is a script, not a package

    folder = assemble.assemble(tmp_path / "space-static", kind="static")
    with serve_folder(folder) as url:
        open_web_page(page, f"{url}/")
        draw(page, ZERO)
        assert prediction(page) == "0"
    assert not console_errors, console_errors


@needs_page("draw.py")
def test_the_draw_pages_link_opens_the_model_as_a_page_served_by_the_app(app, page, console_errors):
    open_page(page, f"{app.url}/draw")
    choose(page, "Model", MNIST_MODEL)
    wait_idle(page)
    link = page.get_by_role("link", name="Open this model as a stand-alone page")
    with page.context.expect_page() as opened:
        link.click()
    web = opened.value
    open_web_page(web, web.url)
    assert "/web/page?model=pretrained" in web.url and web.title() == "CNN studio · lenet5_bn · mnist"
    draw(web, ONE)
    assert prediction(web) == "1"
    assert not console_errors, console_errors


@pytest.mark.parametrize("checkpoint", [MNIST, FASHION], ids=lambda p: p.stem)
def test_the_page_gives_the_servers_answers(page, pages, checkpoint, console_errors):
    """The page's canvas is read back and given to the server's pipeline, so both see the very same pixels."""
    ckpt = load_checkpoint(checkpoint)
    open_web_page(page, pages[checkpoint].as_uri())
    layer = page.evaluate("window.cnnStudio.meta.layer")
    images = drawings() if checkpoint == MNIST else random_strokes(30, seed=1)
    assert len(images) >= 30
    worst_input = worst_probs = worst_maps = 0.0
    for i, image in enumerate(images):
        seen, web = analyse_on_page(page, image)
        server = analyse_drawing(ckpt.model, ckpt.info, seen, layer)
        assert web is not None, f"drawing {i}: the page saw a blank canvas"
        tensor = np.asarray(web["tensor"], np.float32).reshape(server.steps.tensor.shape)
        worst_input = max(worst_input, float(np.abs(tensor - server.steps.tensor.numpy()).max()))
        worst_probs = max(worst_probs, float(np.abs(np.asarray(web["probs"]) - server.probs).max()))
        maps = np.asarray(web["maps"], np.float32).reshape(server.maps.shape)
        worst_maps = max(worst_maps, float((np.abs(maps - server.maps) / (1 + np.abs(server.maps))).max()))
        assert web["prediction"] == server.prediction, f"#{i}: page {web['prediction']}, server {server.prediction}"
        assert web["shown"] == ckpt.info.classes[server.prediction]
    print(f"\n{checkpoint.stem}: {len(images)} drawings, max |input difference| {worst_input:.2g}, "
          f"max |probability difference| {worst_probs:.2g}, max relative maps difference {worst_maps:.2g}")
    assert worst_input <= 1 / 255 / ckpt.info.std + 1e-5  # at most one grey level of the 28x28 digit
    assert worst_probs <= 1e-4 and worst_maps <= 1e-4
    assert not console_errors, console_errors


def test_mouse_strokes_give_the_servers_answers(page, pages):
    """Strokes drawn with the mouse by the page itself (its own pen, its own antialiasing)."""
    ckpt = load_checkpoint(MNIST)
    open_web_page(page, pages[MNIST].as_uri())
    rng = np.random.default_rng(3)
    for i in range(6):
        clear(page)
        start = rng.uniform(60, 220, 2)
        points = [tuple(start + 60 * np.array([np.sin(t), np.cos(1.3 * t)])) for t in np.linspace(0, 4, 25)]
        draw(page, points)
        shown = prediction(page)
        seen = np.frombuffer(base64.b64decode(page.evaluate("canvasBase64()")), np.uint8).reshape(280, 280, 4)
        server = analyse_drawing(ckpt.model, ckpt.info, seen)
        assert shown == ckpt.info.classes[server.prediction], f"stroke {i}"


def test_the_latency_bench_times_the_page(browser, pages):
    """bench/web_latency.py's page half on two drawings: what it measures is there to measure."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("web_latency_bench", REPO / "bench" / "web_latency.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure_web_page(browser, pages[MNIST].as_uri(), 2)
    assert result["n"] == 2 and not result["misread"]
    assert 0 < result["median_ms"] < 5_000 and 0 < result["compute_median_ms"] <= result["max_ms"]
