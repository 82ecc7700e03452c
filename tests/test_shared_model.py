"""One model object shared by many sessions at once (Streamlit runs each session in a thread and hands all of
them the same cached model): every inspection call must give the answer it gives alone."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cnn_core.checkpoints import load_checkpoint
from cnn_core.data import DATASETS
from cnn_core.drawing import upscale_digit
from cnn_core.inspect import SALIENCY_METHODS, feature_maps, inspectable_layers, predict, saliency
from cnn_core.live import analyse_drawing
from tests.conftest import save_tiny, synthetic_digits
from tests.hammer import failures, hammer

PRETRAINED = "checkpoints/lenet5_bn-mnist.safetensors"  # batch norm: a train/eval flip changes its answers
THREADS = 8
ATOL = 1e-5


@pytest.fixture(params=["pretrained lenet5_bn", "tiny custom"])
def shared(request, tmp_path):
    path = PRETRAINED if request.param.startswith("pretrained") else save_tiny(tmp_path / "tiny.safetensors")
    return load_checkpoint(path)


def drawings(n: int = 3) -> list[np.ndarray]:
    images, _ = synthetic_digits(n, seed=7)
    return [upscale_digit(image) for image in images]


def same(a, b) -> bool:
    if a.steps.tensor.shape != b.steps.tensor.shape:
        return False
    pairs = [(a.probs, b.probs), (a.heat, b.heat)] + ([(a.maps, b.maps)] if a.maps is not None else [])
    return a.layer == b.layer and all(x.shape == y.shape and np.allclose(x, y, rtol=0, atol=ATOL) for x, y in pairs)


def test_analyse_drawing_from_many_threads_matches_each_call_alone(shared):
    model, info = shared.model, shared.info
    cases = list(itertools.product(range(3), inspectable_layers(model), SALIENCY_METHODS))
    images = drawings()
    alone = {case: analyse_drawing(model, info, images[case[0]], case[1], case[2]) for case in cases}
    order = [cases[i % len(cases)] for i in range(320)]  # a few hundred calls, every combination many times
    results = hammer([lambda c=c: analyse_drawing(model, info, images[c[0]], c[1], c[2]) for c in order], THREADS)
    assert not failures(results), failures(results)
    wrong = [c for c, (r, _) in zip(order, results) if not same(r, alone[c])]
    assert not wrong, f"{len(wrong)} of {len(order)} results differ from the same call alone, e.g. {wrong[:3]}"
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_inspect_functions_from_many_threads_match_each_call_alone(shared):
    model = shared.model
    layers = inspectable_layers(model)
    torch.manual_seed(0)
    xs = [torch.randn(1, 1, model.input_size, model.input_size) for _ in range(3)]
    calls = {}
    for i, x in enumerate(xs):
        calls[("predict", i)] = lambda x=x: predict(model, x)
        calls[("maps", i)] = lambda x=x: feature_maps(model, x, layers)
        for method in SALIENCY_METHODS:
            calls[(method, i)] = lambda x=x, m=method: saliency(model, x, method=m)
    alone = {key: call() for key, call in calls.items()}
    order = [list(calls)[i % len(calls)] for i in range(300)]
    results = hammer([calls[key] for key in order], THREADS)
    assert not failures(results), failures(results)

    def equal(a, b) -> bool:
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=0, atol=ATOL) for k in a)
        return np.allclose(a, b, rtol=0, atol=ATOL)

    wrong = [key for key, (r, _) in zip(order, results) if not equal(r, alone[key])]
    assert not wrong, f"{len(wrong)} of {len(order)} results differ from the same call alone, e.g. {wrong[:3]}"


def test_the_loaded_model_is_frozen_and_in_eval_mode():
    ckpt = load_checkpoint(PRETRAINED)
    assert not ckpt.model.training and not any(p.requires_grad for p in ckpt.model.parameters())
    analyse_drawing(ckpt.model, DATASETS["mnist"], drawings(1)[0], "conv1", "gradcam")
    assert all(p.grad is None for p in ckpt.model.parameters())
