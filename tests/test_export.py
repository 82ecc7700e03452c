"""Exports: each format's round trip against the PyTorch model, and the generated script run for real."""

import argparse
import dataclasses
import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnn_core.checkpoints import load_checkpoint, save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS, Split, make_bundle
from cnn_core.export import (
    add_export_command,
    export_all,
    export_checkpoint,
    export_onnx,
    export_script,
    export_torchscript,
    layer_code,
    script_source,
)
from cnn_core.models import create_model, list_models
from cnn_core.train import evaluate, fit
from tests.conftest import synthetic_digits, write_dataset


def splits_of_synthetic_digits():
    images, labels = synthetic_digits(600, 0)
    test_images, test_labels = synthetic_digits(200, 1)
    return {"train": Split(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))),
            "test": Split(torch.from_numpy(test_images), torch.from_numpy(test_labels.astype(np.int64)))}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """lenet5_bn (32x32, BatchNorm) trained for two epochs on synthetic digits: real weights and running stats."""
    bundle = make_bundle("mnist", val_size=100, splits=splits_of_synthetic_digits())
    cfg = TrainConfig(model="lenet5_bn", epochs=2, batch_size=32, val_size=100, metrics_every=5)
    state = fit(cfg, data=bundle)
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.safetensors", state.model, cfg, state.history,
                           DATASETS["mnist"])
    return load_checkpoint(path)


def import_script(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_safetensors_reload_equal_and_json_describes_the_input(ckpt, tmp_path):
    path = export_checkpoint(ckpt, tmp_path)
    assert path.name == "lenet5_bn-mnist.safetensors"
    weights = load_file(path)
    original = ckpt.model.state_dict()
    assert weights.keys() == original.keys()
    assert all(torch.equal(weights[k], original[k]) for k in original)
    reloaded = load_checkpoint(path)  # also a CNN studio checkpoint
    x = torch.randn(3, 1, 32, 32)
    assert torch.equal(reloaded.model(x), ckpt.model(x))
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["input"]["shape"] == ["batch", 1, 32, 32]
    assert (meta["input"]["mean"], meta["input"]["std"]) == (0.1307, 0.3081)
    assert meta["classes"] == [str(i) for i in range(10)] and meta["model"] == "lenet5_bn"
    assert [row["layer"] for row in meta["layers"]][1:] == [name for name, _ in ckpt.model.named_children()]
    assert meta["parameters"] == sum(p.numel() for p in ckpt.model.parameters())
    assert len(meta["epochs"]) == 2 and meta["test_acc"] == ckpt.test_acc


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_gives_the_same_logits(ckpt, tmp_path):
    path = export_torchscript(ckpt, tmp_path)
    extra = {"meta.json": ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    for batch in (1, 7):
        x = torch.randn(batch, 1, 32, 32)
        torch.testing.assert_close(scripted(x), ckpt.model(x), rtol=0, atol=1e-6)
    assert json.loads(extra["meta.json"])["input"]["mean"] == 0.1307


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_pytorch_within_1e_4(ckpt, tmp_path, batch):
    path = export_onnx(ckpt, tmp_path)
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == [str(i) for i in range(10)] and props["input_size"] == "32"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(batch, 1, 32, 32, generator=torch.Generator().manual_seed(batch))
    (logits,) = session.run(["logits"], {"input": x.numpy()})
    assert logits.shape == (batch, 10)
    np.testing.assert_allclose(logits, ckpt.model(x).detach().numpy(), rtol=0, atol=1e-4)


CUSTOM_LAYERS = [
    {"type": "conv", "channels": 4, "kernel": 3, "stride": 2, "padding": 1}, {"type": "batchnorm"},
    {"type": "act", "fn": "gelu"}, {"type": "dropout", "p": 0.2}, {"type": "pool", "mode": "avg", "size": 2},
    {"type": "linear", "width": 16}, {"type": "batchnorm"}, {"type": "act", "fn": "sigmoid"},
    {"type": "dropout", "p": 0.1},
]


@pytest.mark.parametrize("name,args", [pytest.param(name, {}, id=name) for name in list_models()]
                         + [pytest.param("custom", {"layers": CUSTOM_LAYERS}, id="custom-every-layer-type")])
def test_every_model_is_rebuilt_by_its_generated_code(ckpt, tmp_path, name, args):
    torch.manual_seed(0)
    model = create_model(name, **args).eval()
    for module in model.modules():  # non-trivial running stats, so that a wrong BatchNorm would show
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    path = tmp_path / f"train_{name}.py"
    path.write_text(script_source(dataclasses.replace(ckpt, model=model, meta={**ckpt.meta, "model": name})))
    rebuilt = import_script(path).build_model()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(4, 1, model.input_size, model.input_size)
    assert torch.equal(rebuilt.eval()(x), model(x))
    assert [type(m) for m in rebuilt.children()] == [type(m) for m in model.children()]


def test_a_layer_without_code_is_named():
    with pytest.raises(ValueError, match="LSTM"):
        layer_code(nn.LSTM(4, 4))


@pytest.fixture
def torchvision_root(tmp_path):
    """Synthetic idx files where torchvision's MNIST looks for them (<root>/MNIST/raw/), so nothing is downloaded."""
    write_dataset(tmp_path / "tv" / "MNIST" / "raw", n_train=600, n_test=200)
    return tmp_path / "tv"


def run_script(path, *args):
    done = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=300,
                          cwd=path.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_generated_script_trains_and_loads_the_exported_weights(ckpt, tmp_path, torchvision_root):
    weights = export_checkpoint(ckpt, tmp_path)
    script = export_script(ckpt, tmp_path)
    assert "cnn_core" not in script.read_text()

    out = run_script(script, "--data", str(torchvision_root), "--epochs", "1", "--max-batches", "3",
                     "--save", str(tmp_path / "trained.safetensors"))
    assert "epoch 1 batch 3/3 loss" in out
    trained, original = load_file(tmp_path / "trained.safetensors"), ckpt.model.state_dict()
    assert {k: v.shape for k, v in trained.items()} == {k: v.shape for k, v in original.items()}

    out = run_script(script, "--data", str(torchvision_root), "--weights", str(weights), "--epochs", "0")
    correct, total = map(int, re.search(r"test accuracy: [\d.]+ \((\d+)/(\d+)\)", out).groups())
    data = make_bundle("mnist", val_size=0, splits=splits_of_synthetic_digits())
    _, acc = evaluate(ckpt.model, data.test, data)
    assert total == 200 and correct == round(acc * 200)  # same weights, same preprocessing, same answers
    assert correct > 100  # and the model did learn the synthetic digits


def test_export_all_and_the_export_command(ckpt, tmp_path, capsys):
    paths = export_all(ckpt, tmp_path / "all")
    assert list(paths) == ["safetensors", "metadata", "torchscript", "onnx", "script"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())

    parser = argparse.ArgumentParser()
    add_export_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["export", str(ckpt.path), "--format", "onnx", "--out", str(tmp_path / "cli")])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "onnx" in printed and "kB" in printed and (tmp_path / "cli" / "lenet5_bn-mnist.onnx").is_file()
