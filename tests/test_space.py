"""The Hugging Face Space: the assembled folder, its front matter and Dockerfile, and its CMD serving for real."""

import filecmp
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "space"))
from tests.conftest import free_port, stop_process  # noqa: E402
import assemble  # noqa: E402  (deploy/space/assemble.py is a script, not a package)

SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    return assemble.assemble(tmp_path_factory.mktemp("build") / "space")


def front_matter(folder):
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def dockerfile(folder):
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    text = (folder / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_space_folder_holds_the_app_library_and_checkpoints(space):
    for name in ("app.py", "pages/home.py", "cnn_core/__init__.py", "cnn_core/hosted.py", "ui/live_chart.js",
                 ".streamlit/config.toml", "Dockerfile",
                 "README.md", ".dockerignore"):
        assert (space / name).is_file(), name
    assert filecmp.cmp(ROOT / "requirements.txt", space / "requirements.txt", shallow=False)
    checkpoints = sorted(p.name for p in (ROOT / "checkpoints").glob("*.safetensors"))
    assert sorted(p.name for p in (space / "checkpoints").glob("*.safetensors")) == checkpoints
    for name in checkpoints:
        assert filecmp.cmp(ROOT / "checkpoints" / name, space / "checkpoints" / name, shallow=False)
    assert not list(space.rglob("__pycache__")) and not (space / "tests").exists() and not (space / "data").exists()
    assert "data/" in (space / ".dockerignore").read_text().split()


def test_front_matter_makes_a_docker_space_on_port_7860(space):
    meta = front_matter(space)
    assert meta["sdk"] == "docker" and meta["app_port"] == 7860
    assert meta["title"] and meta["emoji"] and {meta["colorFrom"], meta["colorTo"]} <= SPACE_COLORS
    assert 0 < len(meta["short_description"]) <= 60


def test_dockerfile_runs_streamlit_as_uid_1000_with_data_and_checkpoints(space):
    steps = dockerfile(space)
    args = {kind: [a for k, a in steps if k == kind] for kind in {k for k, _ in steps}}
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any("useradd" in a and ("-u 1000" in a or "--uid 1000" in a) for a in args["RUN"])
    assert args["USER"] == ["user"] and any("HOME=/home/user" in a for a in args["ENV"])
    assert any("pip install" in a and "-r requirements.txt" in a for a in args["RUN"])
    assert "python -m cnn_core fetch-data" in args["RUN"]
    assert any(a.split()[-2:] == ["checkpoints/", "checkpoints/"] for a in args["COPY"])
    assert "CNN_HOSTED=1" in args["ENV"] and args["EXPOSE"] == ["7860"]
    assert json.loads(args["CMD"][0]) == ["streamlit", "run", "app.py", "--server.port", "7860",
                                          "--server.address", "0.0.0.0", "--server.headless", "true"]
    copy_library = steps.index(("COPY", "--chown=user cnn_core/ cnn_core/"))
    assert copy_library < steps.index(("RUN", "python -m cnn_core fetch-data"))  # fetch-data needs the library


@pytest.fixture(scope="module")
def gradio_space(tmp_path_factory):
    return assemble.assemble(tmp_path_factory.mktemp("build") / "space-gradio", kind="gradio", owner="someone",
                             repository="https://example.org/cnn-studio")


def test_gradio_kind_makes_a_zerogpu_space(gradio_space):
    from huggingface_hub import SpaceHardware

    meta = front_matter(gradio_space)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__ and "app_port" not in meta
    assert meta["python_version"] in ("3.10", "3.12")  # the Pythons ZeroGPU runs, quoted: 3.10 is not 3.1
    assert "python_version: '3.12'" in (gradio_space / "README.md").read_text()
    assert meta["suggested_hardware"] == SpaceHardware.ZERO_A10G  # huggingface_hub's name for ZeroGPU
    assert 0 < len(meta["short_description"]) <= 60 and {meta["colorFrom"], meta["colorTo"]} <= SPACE_COLORS
    assert (gradio_space / meta["app_file"]).is_file() and (gradio_space / "cnn_core" / "drawing.py").is_file()
    assert not (gradio_space / "Dockerfile").exists() and not (gradio_space / "pages").exists()
    body = (gradio_space / "README.md").read_text()
    assert "ZeroGPU" in body and "quota" in body and "https://example.org/cnn-studio" in body
    assert "https://huggingface.co/spaces/someone/cnn-studio-draw" in body  # the static page
    links = json.loads((gradio_space / "links.json").read_text())
    assert links == {"docker": "https://huggingface.co/spaces/someone/cnn-studio",
                     "static": "https://huggingface.co/spaces/someone/cnn-studio-draw",
                     "repository": "https://example.org/cnn-studio"}


def space_requirements(folder):
    from packaging.requirements import Requirement

    lines = [line.split("#")[0].strip() for line in (folder / "requirements.txt").read_text().splitlines()]
    return {(req := Requirement(line)).name.lower(): req for line in lines if line}


def test_gradio_space_requirements_install_on_zerogpu_and_admit_what_we_test(gradio_space):
    """torch >= 2.8 unpinned (ZeroGPU's torch, not our pin), torchvision unpinned, gradio at the sdk_version; every
    package we test with satisfies its line, so the tested environment is one the Space may get."""
    from importlib.metadata import version

    reqs = space_requirements(gradio_space)
    torch = reqs["torch"]
    assert "==" not in str(torch.specifier) and torch.specifier.contains("2.8.0") and not torch.specifier.contains("2.7.1")
    assert str(reqs["torchvision"].specifier) == ""
    assert str(reqs["gradio"].specifier) == f"=={gradio.__version__}" and "spaces" in reqs
    for name, req in reqs.items():
        assert req.specifier.contains(version(name), prereleases=True), f"{name} {version(name)} is not {req}"
    assert {"streamlit", "ray", "onnx", "onnxruntime", "playwright", "pytest"}.isdisjoint(reqs)


def not_on_the_space(folder) -> list[str]:
    """Top-level modules installed here that the Space's requirements (with everything they need) do not bring."""
    from importlib.metadata import PackageNotFoundError, distribution, packages_distributions

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen, todo = set(), list(space_requirements(folder))
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        todo += [r.name for r in map(Requirement, requires) if not r.marker or r.marker.evaluate({"extra": ""})]
    ours = {canonicalize_name(line.split("==")[0]) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if "==" in line}
    return sorted(module for module, dists in packages_distributions().items()
                  if all(canonicalize_name(d) in ours - seen for d in dists))


SERVE_TWIN = """
import runpy, sys
blocked = set(sys.argv[1].split(","))
class NotOnTheSpace:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not in the Space's requirements")
sys.meta_path.insert(0, NotOnTheSpace())
import cnn_core
print("library:", cnn_core.__file__, flush=True)
runpy.run_path("gradio_app.py", run_name="__main__")
"""


def test_the_assembled_twin_imports_and_serves_with_only_its_requirements(gradio_space, tmp_path):
    """gradio_app.py from the Space folder, with every package the Space does not install made unimportable,
    serves its page (and its links) on loopback."""
    blocked = not_on_the_space(gradio_space)
    assert {"streamlit", "ray", "onnx", "playwright"} <= set(blocked)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CNN_HOSTED="1", CNN_RUNS_DIR=str(tmp_path / "runs"), GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "-c", SERVE_TWIN, ",".join(blocked)], cwd=gradio_space, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while health(f"http://127.0.0.1:{port}/config") is None:
            assert proc.poll() is None, f"the twin exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "the assembled twin did not answer within 180 s"
            time.sleep(0.5)
        config = health(f"http://127.0.0.1:{port}/config")
        assert "https://huggingface.co/spaces/someone/cnn-studio-draw" in config  # its link to the static page
        assert "https://example.org/cnn-studio" in config  # and to the repository
    finally:
        stop_process(proc)
    assert f"library: {gradio_space / 'cnn_core'}" in proc.stdout.read()


def test_reassembling_replaces_an_assembly_but_never_other_folders(space, tmp_path):
    (space / "stale.txt").write_text("from an earlier assembly")
    assemble.assemble(space)
    assert not (space / "stale.txt").exists() and (space / "app.py").is_file()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not an earlier Space assembly"):
        assemble.assemble(other)
    assert (other / "keep.txt").read_text() == "mine"


APP_TEST = """
import cnn_core
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=120).run()
assert not at.exception, [e.message for e in at.exception]
print(cnn_core.__file__, [t.value for t in at.title])
"""


def test_the_assembled_app_runs_from_its_own_folder(space, tmp_path):
    """app.py and its home page in hosted mode, importing only what the Space folder holds (not this checkout)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(CNN_HOSTED="1", CNN_RUNS_DIR=str(tmp_path / "runs"))
    done = subprocess.run([sys.executable, "-c", APP_TEST], cwd=space, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert str(space / "cnn_core") in done.stdout and "CNN studio" in done.stdout


def health(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode().strip()
    except OSError:
        return None


def test_the_dockerfile_cmd_serves_the_assembled_app(space, tmp_path):
    """The CMD as written, run here: streamlit from this venv, a free loopback port instead of 0.0.0.0:7860."""
    cmd = json.loads(dict(dockerfile(space))["CMD"])
    port = free_port()
    cmd = [sys.executable, "-m", *cmd]
    cmd[cmd.index("--server.port") + 1] = str(port)
    cmd[cmd.index("--server.address") + 1] = "127.0.0.1"
    env = {**os.environ, "CNN_HOSTED": "1", "CNN_RUNS_DIR": str(tmp_path / "runs"),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(cmd, cwd=space, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while (answer := health(f"http://127.0.0.1:{port}/_stcore/health")) != "ok":
            assert proc.poll() is None, f"streamlit exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, f"no 'ok' from /_stcore/health within 120 s (last: {answer!r})"
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and "<html" in page.read().decode().lower()
    finally:
        stop_process(proc)


needs_web_runtime = pytest.mark.skipif(
    not (ROOT / "cnn_core" / "web" / "vendor" / "VERSION").is_file() and os.environ.get("CI", "").lower() != "true",
    reason="onnxruntime-web is not vendored here (`make web`): the static Space is not assembled")


@needs_web_runtime
def test_static_kind_makes_a_static_space_of_one_page(tmp_path):
    import re

    folder = assemble.assemble(tmp_path / "static", kind="static")
    meta = front_matter(folder)
    assert meta["sdk"] == "static" and meta["app_file"] == "index.html" and "app_port" not in meta
    assert meta["title"] and meta["emoji"] and {meta["colorFrom"], meta["colorTo"]} <= SPACE_COLORS
    assert 0 < len(meta["short_description"]) <= 60
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "index.html"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    info = json.loads(re.search(r'<script type="application/json" id="meta">(.*?)</script>', page, re.DOTALL).group(1))
    assert (info["model"], info["dataset"], info["source"]) == ("lenet5_bn", "mnist", "lenet5_bn-mnist.safetensors")
    assert (folder / "index.html").stat().st_size < assemble.MAX_FILE_MB * 1e6  # pushable without LFS
    assert "lenet5_bn" in (folder / "README.md").read_text() and "{model}" not in (folder / "README.md").read_text()
    assemble.assemble(folder, kind="static")  # an earlier static assembly is replaced like the others
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "index.html"]


def test_static_kind_without_the_web_runtime_says_what_to_run(tmp_path, monkeypatch):
    import cnn_core.webpage

    monkeypatch.setattr(cnn_core.webpage, "runtime_version", lambda folder=None: None)
    with pytest.raises(SystemExit, match="make web"):
        assemble.assemble(tmp_path / "static", kind="static")
    assert not (tmp_path / "static").exists()
