"""RunSettings.from_env: defaults, each variable, the legacy executor name, and errors that name the variable."""

import pytest

from cnn_core.runs.settings import DEFAULT_RUNS_DIR, EXECUTORS, RAY_CONCURRENT, RunSettings, runs_dir

VARIABLES = ("CNN_RUNS_DIR", "CNN_EXECUTOR", "CNN_MAX_CONCURRENT", "CNN_WARM_WORKERS", "RAY_ADDRESS")


@pytest.fixture
def env(monkeypatch):
    """A clean slate for the settings' variables; returns monkeypatch to set some."""
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_defaults(env):
    assert RunSettings.from_env() == RunSettings(DEFAULT_RUNS_DIR, "process", 1, 1, None)
    assert DEFAULT_RUNS_DIR.name == "runs" and (DEFAULT_RUNS_DIR.parent / "cnn_core").is_dir()
    assert runs_dir() == DEFAULT_RUNS_DIR


def test_every_variable(env, tmp_path):
    env.setenv("CNN_RUNS_DIR", str(tmp_path / "runs"))
    env.setenv("CNN_EXECUTOR", "inline")
    env.setenv("CNN_MAX_CONCURRENT", "3")
    env.setenv("CNN_WARM_WORKERS", "0")
    env.setenv("RAY_ADDRESS", "ray://head:10001")
    assert RunSettings.from_env() == RunSettings(tmp_path / "runs", "inline", 3, 0, "ray://head:10001")
    assert runs_dir() == tmp_path / "runs"


def test_a_mapping_instead_of_the_environment(env):
    env.setenv("CNN_EXECUTOR", "ray")
    assert RunSettings.from_env({"CNN_MAX_CONCURRENT": "2"}) == RunSettings(DEFAULT_RUNS_DIR, "process", 2, 2, None)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_each_executor(env, executor):
    env.setenv("CNN_EXECUTOR", executor)
    assert RunSettings.from_env().executor == executor


def test_thread_is_the_legacy_name_of_inline(env):
    env.setenv("CNN_EXECUTOR", "thread")
    assert RunSettings.from_env().executor == "inline"


@pytest.mark.parametrize("value", ["threads", "Process", "celery", ""])
def test_unknown_executor_is_an_error_naming_the_variable(env, value):
    env.setenv("CNN_EXECUTOR", value)
    with pytest.raises(ValueError, match=r"CNN_EXECUTOR must be one of inline, process, ray"):
        RunSettings.from_env()


def test_warm_workers_default_to_max_concurrent(env):
    env.setenv("CNN_MAX_CONCURRENT", "4")
    assert RunSettings.from_env().warm_workers == 4


def test_ray_defaults_to_many_at_once(env):
    env.setenv("CNN_EXECUTOR", "ray")
    settings = RunSettings.from_env()
    assert settings.max_concurrent == RAY_CONCURRENT and settings.warm_workers == RAY_CONCURRENT
    assert settings.ray_address is None
    env.setenv("CNN_MAX_CONCURRENT", "5")
    assert RunSettings.from_env().max_concurrent == 5


@pytest.mark.parametrize("var, value", [("CNN_MAX_CONCURRENT", "0"), ("CNN_MAX_CONCURRENT", "two"),
                                        ("CNN_MAX_CONCURRENT", "-1"), ("CNN_MAX_CONCURRENT", "1.5"),
                                        ("CNN_MAX_CONCURRENT", ""), ("CNN_WARM_WORKERS", "-1"),
                                        ("CNN_WARM_WORKERS", "many")])
def test_malformed_numbers_are_errors_naming_the_variable(env, var, value):
    env.setenv(var, value)
    with pytest.raises(ValueError, match=f"{var} must be a whole number of at least"):
        RunSettings.from_env()


def test_empty_paths_fall_back_to_defaults(env):
    env.setenv("CNN_RUNS_DIR", "")
    env.setenv("RAY_ADDRESS", "")
    settings = RunSettings.from_env()
    assert settings.runs_dir == DEFAULT_RUNS_DIR and settings.ray_address is None
