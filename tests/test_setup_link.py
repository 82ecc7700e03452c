"""Share a setup (cnn_core/setup_link.py): every recipe and stack survives the round trip in a short text; a
truncated, old, unknown or out-of-range link never raises and names what it left out."""

import dataclasses

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.models import create_model
from cnn_core.presets import PRESETS
from cnn_core.setup_link import MAX_LENGTH, V1_DEFAULTS, decode, encode, number_text

STACK = [
    {"type": "conv", "channels": 12, "kernel": 5, "stride": 1, "padding": 2}, {"type": "batchnorm"},
    {"type": "act", "fn": "gelu"}, {"type": "pool", "mode": "avg", "size": 2},
    {"type": "conv", "channels": 24, "kernel": 3, "stride": 2, "padding": 0}, {"type": "act", "fn": "tanh"},
    {"type": "dropout", "p": 0.25}, {"type": "linear", "width": 100}, {"type": "act", "fn": "sigmoid"},
    {"type": "dropout", "p": 0.05},
]
CUSTOM = TrainConfig(model="custom", model_args={"layers": STACK, "input_size": 32}, epochs=7, batch_size=256,
                     optimizer="momentum", lr=0.025, momentum=0.95, weight_decay=1e-4, schedule="cosine",
                     augment=True, normalize=False, patience=3, label_smoothing=0.1, seed=42, device="cpu",
                     val_size=2500, metrics_every=10, dataset="fashion-mnist")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_recipe_round_trips_in_a_few_tens_of_characters(name):
    config = PRESETS[name].config
    text = encode(config)
    assert decode(text) == (config, [])
    assert len(text) <= 60, text
    assert all(c.isalnum() or c in ".-_" for c in text), "URL-safe as it is: nothing to escape"


def test_a_custom_stack_and_every_field_round_trip():
    text = encode(CUSTOM)
    assert text == ("v1.Lc12k5p2_bn_gelu_avg2_c24k3s2_tanh_drop25_fc100_sigmoid_drop5.in32.fashion-mnist.raw.e7."
                    "b256.momentum.lr25e-3.m95e-2.wd1e-4.cosine.aug.p3.ls1e-1.s42.cpu.val2500.r10")
    assert decode(text) == (CUSTOM, [])


def test_defaults_are_version_ones_and_a_bare_version_is_them():
    assert decode("v1") == (TrainConfig(**V1_DEFAULTS), [])
    assert encode(TrainConfig(**V1_DEFAULTS)) == "v1"


@pytest.mark.parametrize("value", [0.003, 1e-3, 0.9, 0.95, 1.5, 2.0, 3e-4, 0.00025, 0.1 + 0.2, 1e-7, 7.0, 123456.0])
def test_numbers_are_written_without_a_dot_and_read_back_exactly(value):
    text = number_text(value)
    assert "." not in text and float(text) == value


def test_what_the_form_cannot_hold_is_refused_when_encoding():
    with pytest.raises(ValueError, match="hidden"):
        encode(TrainConfig(model="mlp", model_args={"hidden": 16}))
    with pytest.raises(ValueError, match="train subset"):
        encode(TrainConfig(train_subset=100))


def buildable(config: TrainConfig) -> bool:
    with torch.device("meta"):
        return create_model(config.model, **config.model_args) is not None


@pytest.mark.parametrize("config", [CUSTOM, PRESETS[next(iter(PRESETS))].config], ids=["custom", "recipe"])
def test_a_link_cut_anywhere_opens_with_what_it_still_holds(config):
    text = encode(config)
    for end in range(len(text) + 1):
        cut, ignored = decode(text[:end])  # never raises
        assert cut.validate() is cut and buildable(cut)
        assert all(isinstance(item, str) and item for item in ignored)
        if end == len(text) or (end > 2 and text[end] == "."):  # cut between two tokens: all it holds is used
            assert ignored == []


def test_an_older_or_newer_version_or_no_version_uses_nothing_and_says_so():
    for text, what in (("v0.e3.b128", "version 'v0'"), ("v2.e3", "version 'v2'"), ("e3.b128", "no version"),
                       ("", "no version"), ("eyJlIjozfQ", "no version")):
        config, ignored = decode(text)
        assert config == TrainConfig(**V1_DEFAULTS)
        assert len(ignored) == 1 and what in ignored[0] and "nothing of it was used" in ignored[0]


def test_unknown_and_out_of_range_tokens_are_named_and_the_rest_applied():
    config, ignored = decode("v1.mlp.e500.b12.zz9.lr0.e4.m-1.val99999.p51.ls6e-1.sgd.lr2e-2.quantum.lr1e999")
    assert config == dataclasses.replace(TrainConfig(**V1_DEFAULTS), model="mlp", epochs=4, optimizer="sgd", lr=0.02)
    assert ignored == [
        "`e500`: Epochs must be between 1 and 100.",
        "`b12`: Batch size must be one of 16, 32, 64, 100, 128, 256, 512, 1024.",
        "`zz9`: not a setting this version of CNN studio knows.",
        "`lr0`: Learning rate must be above 0 and at most 10 (try 1e-3 for Adam, 0.01-0.1 for SGD).",
        "`m-1`: not a setting this version of CNN studio knows.",
        "`val99999`: Validation images must be between 0 and 30000.",
        "`p51`: Early-stop patience must be between 0 and 50.",
        "`ls6e-1`: Label smoothing must be between 0 and 0.5.",
        "`quantum`: not a setting this version of CNN studio knows.",
        "`lr1e999`: Learning rate must be between 0 and 10.",
    ]


@pytest.mark.parametrize("stack, reason", [
    ("Lc8k3p1_re", "layer 2, `re`, is not a layer"),
    ("Lc300k3", "its channels must be between 1 and 256"),
    ("Lc256k3p1_fc4096", "822,"),  # within every field's range, but 822 million parameters: counted, never built
    ("Lc8k11_max4_c8k11", "does not fit its 4x4 input"),
    ("L" + "_".join(["relu"] * 40), "at most 32"),
    ("Ldrop95", "its p must be between 0% and 90%"),
    ("Ldrop5e", "layer 1, `drop5e`, is not a layer"),
])
def test_a_bad_or_malicious_stack_gives_the_default_stack_and_says_why(stack, reason):
    config, ignored = decode(f"v1.{stack}.e2")
    assert config.model == "custom" and config.epochs == 2 and buildable(config)
    assert len(ignored) == 1 and reason in ignored[0] and "default stack" in ignored[0]


def test_stack_tokens_on_another_model_and_a_softmax_it_lacks_are_named():
    config, ignored = decode("v1.Lc8k3.in32.mlp.lenet5_bn.softmax")
    assert config.model == "lenet5_bn" and config.model_args == {}
    assert [item.split("`")[1] for item in ignored] == ["Lc8k3", "in32", "softmax"]


def test_a_link_too_long_to_be_a_setup_is_not_read():
    config, ignored = decode("v1." + "e3." * MAX_LENGTH)
    assert config == TrainConfig(**V1_DEFAULTS) and "at most 1,000" in ignored[0]
