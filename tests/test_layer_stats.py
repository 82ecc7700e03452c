"""Per-layer gradient and weight statistics in the step records: the norms match PyTorch's, the histograms count
every weight, and the vanishing-gradient hint names the layers of a sigmoid LeNet, not those of a healthy one."""

import math

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.layer_stats import HIST_BINS, VANISH_REPORTS, LayerStats, stat_layers, vanishing_hint
from cnn_core.models import create_model
from cnn_core.train import fit

SIGMOID_LENET = [  # LeNet-5 with sigmoid, as d2l.ai writes it
    {"type": "conv", "channels": 6, "kernel": 5, "padding": 2}, {"type": "act", "fn": "sigmoid"},
    {"type": "pool", "mode": "avg", "size": 2},
    {"type": "conv", "channels": 16, "kernel": 5}, {"type": "act", "fn": "sigmoid"},
    {"type": "pool", "mode": "avg", "size": 2},
    {"type": "linear", "width": 120}, {"type": "act", "fn": "sigmoid"},
    {"type": "linear", "width": 84}, {"type": "act", "fn": "sigmoid"},
]


def test_norms_and_histograms_match_pytorch():
    torch.manual_seed(0)
    model = create_model("lenet5_bn")
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 32, 32)), torch.arange(8))
    loss.backward()
    report = LayerStats(model).report()
    layers = dict(stat_layers(model))
    assert list(report["grad_norms"]) == ["conv1", "conv2", "fc1", "fc2", "fc3"]  # conv and linear, in model order
    for name, layer in layers.items():
        params = [layer.weight, layer.bias]
        grad = math.sqrt(sum(p.grad.norm().item() ** 2 for p in params))
        weight = math.sqrt(sum(p.norm().item() ** 2 for p in params))
        assert report["grad_norms"][name] == pytest.approx(grad, rel=1e-3)
        assert report["weight_norms"][name] == pytest.approx(weight, rel=1e-3)
        hist = report["weight_hist"][name]
        assert len(hist["counts"]) == HIST_BINS and sum(hist["counts"]) == layer.weight.numel()
        assert hist["hi"] == -hist["lo"] == pytest.approx(layer.weight.abs().max().item(), rel=1e-3)
        top = layer.weight.abs().max().item()
        expected = torch.histc(layer.weight.detach(), HIST_BINS, -top, top)
        assert sum(abs(a - b) for a, b in zip(hist["counts"], expected.tolist())) <= 2  # edges may round apart
    assert report["vanishing"] is None


def config(**kw):
    base = dict(epochs=1, batch_size=32, metrics_every=4, val_size=200, optimizer="sgd", lr=0.1)
    return TrainConfig(**{**base, **kw})


def test_every_step_record_carries_the_statistics_and_checkpoints_leave_them_out(tiny_bundle, tmp_path):
    from cnn_core.checkpoints import load_checkpoint, save_checkpoint

    state = fit(config(model="lenet5_bn", optimizer="adam", lr=1e-3), data=tiny_bundle)
    for record in state.history.steps:
        assert set(record.grad_norms) == set(record.weight_norms) == set(record.weight_hist) == {
            "conv1", "conv2", "fc1", "fc2", "fc3"}
        assert all(v > 0 for v in record.grad_norms.values())
    first, last = state.history.steps[0], state.history.steps[-1]
    assert first.weight_hist["fc1"] != last.weight_hist["fc1"]  # it moves as training goes
    assert all(r.vanishing is None for r in state.history.steps)
    path = save_checkpoint(tmp_path / "last.safetensors", state.model, state.config, state.history, state.data.info)
    kept = load_checkpoint(path).history  # the curves, not the per-layer statistics (metrics.jsonl has them)
    assert [r.train_loss for r in kept.steps] == [r.train_loss for r in state.history.steps]
    assert all(r.grad_norms is None and r.weight_hist is None for r in kept.steps)


def test_a_sigmoid_lenet_is_told_that_its_first_layers_gradients_vanished(tiny_bundle):
    state = fit(config(model="custom", model_args={"layers": SIGMOID_LENET}), data=tiny_bundle)
    steps = state.history.steps
    assert all(r.vanishing is None for r in steps[:VANISH_REPORTS - 1])  # it takes several reports in a row
    assert "conv1" in steps[-1].vanishing and "fc3" not in steps[-1].vanishing  # named by layer, deepest last
    assert vanishing_hint(["conv1"]).startswith("conv1's gradients have almost vanished")
    assert vanishing_hint(["conv1", "conv2"]).startswith("The gradients of conv1 and conv2 have almost vanished")
    assert vanishing_hint([]) is None


def test_the_statistics_can_be_switched_off(tiny_bundle, monkeypatch):
    monkeypatch.setattr("cnn_core.train.LAYER_STATS", False)
    state = fit(config(model="mlp"), data=tiny_bundle)
    assert all(r.grad_norms is None for r in state.history.steps)


def test_a_run_whose_relus_all_died_is_told_so_for_every_layer():
    import numpy as np

    from cnn_core.data import Split, make_bundle
    from tests.conftest import synthetic_digits

    images, labels = synthetic_digits(2000, 0)
    test_images, test_labels = synthetic_digits(200, 1)
    data = make_bundle("mnist", val_size=200, splits={
        "train": Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))),
        "test": Split(torch.from_numpy(test_images), torch.from_numpy(test_labels.astype(np.int64)))})
    state = fit(config(model="lenet_modern", lr=2.0, batch_size=64, metrics_every=5), data=data)  # every ReLU dies
    last = state.history.steps[-1]
    dead = [name for name, norm in last.grad_norms.items() if norm == 0]
    assert state.status.succeeded and {"conv1", "conv2", "fc1"} <= set(dead)
    assert set(dead) <= set(last.vanishing)
