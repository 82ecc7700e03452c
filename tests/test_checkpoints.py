"""Checkpoints: exact round trip; pickles, wrong shapes, truncation and unknown models are rejected."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from cnn_core.checkpoints import CheckpointError, load_checkpoint, read_metadata, save_checkpoint
from cnn_core.config import TrainConfig
from cnn_core.data import DATASETS
from cnn_core.models import create_model
from cnn_core.runs import EndRecord, EpochRecord, History, RunStatus

HISTORY = History([EpochRecord(1, 10, 1.5, 0.4, 0.88, 0.35, 0.9, 1e-3, 1.5, 4000.0),
                   EndRecord(1, 10, 1.6, RunStatus.FINISHED, 0.3, 0.91, 1.6)])


def saved(tmp_path, model="lenet5_bn", **model_args):
    net = create_model(model, **model_args)
    torch.nn.init.normal_(net[0].weight)
    cfg = TrainConfig(model=model, model_args=model_args, epochs=7)
    return net, save_checkpoint(tmp_path / "m.safetensors", net, cfg, HISTORY, DATASETS["mnist"])


def test_round_trip_is_exact(tmp_path):
    net, path = saved(tmp_path)
    ckpt = load_checkpoint(path)
    for (k, a), (k2, b) in zip(net.state_dict().items(), ckpt.model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    assert ckpt.config.epochs == 7 and ckpt.history == HISTORY
    assert ckpt.test_acc == 0.91 and ckpt.meta["best_val_acc"] == 0.9
    assert ckpt.info.mean == 0.1307 and ckpt.model.input_size == 32
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(net.eval()(x), ckpt.model(x))
    assert not list(tmp_path.glob("*.part"))


def test_custom_model_round_trip(tmp_path):
    layers = [{"type": "conv", "channels": 3, "kernel": 3}, {"type": "act", "fn": "relu"}]
    net, path = saved(tmp_path, "custom", layers=layers)
    assert load_checkpoint(path).model.conv1.out_channels == 3


def test_pickle_payload_is_rejected_without_unpickling(tmp_path):
    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": Boom()}))
    torch_path = tmp_path / "evil.pt"
    torch.save({"x": torch.zeros(1)}, torch_path)
    for p in (path, torch_path):
        with pytest.raises(CheckpointError, match="not"):
            load_checkpoint(p)
    assert not (tmp_path / "pwned").exists()


def test_wrong_shape_is_rejected(tmp_path):
    _, path = saved(tmp_path)
    meta = read_metadata(path)
    weights = {k: v for k, v in create_model("lenet5_bn").state_dict().items()}
    weights["conv1.weight"] = torch.zeros(8, 1, 5, 5)
    bad = tmp_path / "bad.safetensors"
    save_file(weights, bad, metadata={"format": "cnn-studio", "format_version": "1", "meta": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="do not fit.*conv1.weight"):
        load_checkpoint(bad)


def test_unknown_model_and_foreign_safetensors_are_rejected(tmp_path):
    _, path = saved(tmp_path)
    meta = read_metadata(path)
    weights = create_model("lenet5_bn").state_dict()
    other = tmp_path / "other.safetensors"
    save_file(weights, other, metadata={"format": "cnn-studio", "format_version": "1",
                                        "meta": json.dumps({**meta, "model": "skynet"})})
    with pytest.raises(CheckpointError, match="unknown model 'skynet'"):
        load_checkpoint(other)
    plain = tmp_path / "plain.safetensors"
    save_file(weights, plain)
    with pytest.raises(CheckpointError, match="not a CNN studio checkpoint"):
        load_checkpoint(plain)


def test_truncated_file_is_rejected(tmp_path):
    _, path = saved(tmp_path)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_loading_while_a_run_rewrites_the_file_never_mixes_versions(tmp_path):
    """A run rewrites last.safetensors every epoch while sessions load it: each load is one whole version."""
    import threading

    from cnn_core.data import DATASETS
    from cnn_core.models import create_model
    from tests.hammer import failures, hammer

    path = tmp_path / "last.safetensors"
    cfg = TrainConfig(model="mlp", model_args={"hidden": 8})
    model = create_model("mlp", hidden=8)

    def write(version: int) -> None:
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(version)
        save_checkpoint(path, model, cfg, [], DATASETS["mnist"], extra={"version": version})

    write(0)
    done = threading.Event()

    def writer() -> None:
        version = 0
        while not done.is_set():
            version += 1
            write(version)

    def load() -> tuple[int, float]:
        ckpt = load_checkpoint(path)
        return ckpt.meta["version"], float(ckpt.model.fc1.weight[0, 0])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = hammer([load for _ in range(1500)], threads=6)
    finally:
        done.set()
        thread.join()
    assert not failures(results), failures(results)
    mixed = [(meta, weight) for (meta, weight), _ in results if meta != weight]
    assert not mixed, f"{len(mixed)} of 1500 loads paired one version's metadata with another's weights: {mixed[:3]}"
    assert len({meta for (meta, _), _ in results}) > 1  # the file did change under the readers
