"""AppTest of "Share a setup" on the Train page: ?setup= fills the form (a recipe, a custom stack); the form offers
its own link; a bad link opens with a sentence naming what was left out, never a traceback."""

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.presets import PRESETS
from cnn_core.setup_link import encode
from tests.conftest import APP
from tests.test_setup_link import CUSTOM


@pytest.fixture
def runs_root(tmp_path, tiny_data_dir, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("CNN_RUNS_DIR", str(root))
    return root


def open_train(setup: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if setup is not None:
        at.query_params["setup"] = setup
    at.run()
    at = at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def shared_link(at: AppTest) -> str:
    [code] = [c.value for c in at.code if "?setup=" in c.value]
    return code


def test_the_form_offers_its_setup_as_a_short_link_that_follows_every_change(runs_root):
    at = open_train()
    quick = PRESETS[next(iter(PRESETS))].config
    assert shared_link(at) == f"/train?setup={encode(quick)}"
    at.number_input(key="cfg_epochs").set_value(5)
    at.selectbox(key="cfg_dataset").set_value("fashion-mnist").run()
    assert shared_link(at).endswith(".fashion-mnist.e5.b128.adamw.lr3e-3.wd5e-4.onecycle.r20")


def test_a_recipe_link_fills_the_form(runs_root):
    name = "Course notebook: LeNet — SGD 0.01, 10 epochs"
    at = open_train(encode(PRESETS[name].config))
    assert at.selectbox(key="preset").value == name
    assert at.selectbox(key="cfg_model").value == "lenet_notebook" and at.checkbox(key="cfg_softmax").value
    assert at.number_input(key="cfg_epochs").value == 10 and at.selectbox(key="cfg_optimizer").value == "sgd"
    assert at.number_input(key="cfg_lr").value == 0.01 and not at.checkbox(key="cfg_normalize").value
    assert any("holds the setup from the link" in c.value for c in at.caption) and not at.warning
    assert shared_link(at) == f"/train?setup={encode(PRESETS[name].config)}"


def test_a_custom_stack_link_fills_the_layer_editor_and_every_setting(runs_root):
    at = open_train(encode(CUSTOM))
    assert not at.warning and not at.error
    assert at.selectbox(key="cfg_model").value == "custom" and at.radio(key="custom_input_size").value == 32
    assert at.number_input(key="l0_ch").value == 12 and at.number_input(key="l0_k").value == 5
    assert at.selectbox(key="l3_m").value == "avg" and at.number_input(key="l4_s").value == 2
    assert at.number_input(key="l6_dp").value == 0.25 and at.number_input(key="l7_w").value == 100
    assert at.selectbox(key="cfg_schedule").value == "cosine" and at.checkbox(key="cfg_augment").value
    assert at.number_input(key="cfg_momentum").value == 0.95 and at.number_input(key="cfg_seed").value == 42
    assert shared_link(at) == f"/train?setup={encode(CUSTOM)}", "the form holds exactly the link's setup"
    at.number_input(key="cfg_epochs").set_value(8).run()  # applied once: the student's changes stay
    assert at.number_input(key="cfg_epochs").value == 8 and ".e8." in shared_link(at)


@pytest.mark.parametrize("setup, named", [
    ("v1.mlp.e500.sgd.zz9", ["`e500`: Epochs must be between 1 and 100.", "`zz9`: not a setting"]),
    ("v1.e2.b12", ["`b12`: Batch size must be one of"]),  # truncated from b128
    ("v1.Lc8k3p1_re", ["`Lc8k3p1_re`: layer 2, `re`, is not a layer", "The default stack is used instead."]),
    ("v1.Lc256k3p1_fc4096", ["parameters; a link builds at most 20,000,000"]),
    ("v0.e3", ["version 'v0'", "nothing of it was used"]),
    ("eyJlcG9jaHMiOjN9", ["no version"]),
])
def test_a_bad_or_old_link_opens_the_form_with_a_sentence_naming_what_was_left_out(runs_root, setup, named):
    at = open_train(setup)
    [warning] = at.warning
    assert all(part in warning.value for part in named), warning.value
    assert [b for b in at.button if b.label == "Train"][0].disabled is False, "what it could use makes a valid form"
    if setup.startswith("v1.mlp"):
        assert at.selectbox(key="cfg_model").value == "mlp" and at.selectbox(key="cfg_optimizer").value == "sgd"
