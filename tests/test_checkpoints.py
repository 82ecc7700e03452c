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


# ---------------------------------------------------------------- a checkpoint brought from elsewhere (an upload)
def crafted(weights: dict[str, torch.Tensor], meta: dict, header: dict[str, str] | None = None) -> bytes:
    """A safetensors file's bytes with these tensors and this CNN studio description (`header` overrides its
    safetensors metadata)."""
    from safetensors.torch import save

    return save(weights, metadata={"format": "cnn-studio", "format_version": "1", "meta": json.dumps(meta),
                                   **(header or {})})


@pytest.fixture
def good(tmp_path):
    _, path = saved(tmp_path)
    return path.read_bytes(), read_metadata(path)


def test_an_upload_loads_as_the_same_file_from_disk(tmp_path, good):
    from cnn_core.checkpoints import load_upload

    data, _ = good
    ckpt, disk = load_upload(data, "mine.safetensors"), load_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.path.name == "mine.safetensors" and ckpt.meta == disk.meta and ckpt.info == disk.info
    for (k, a), (k2, b) in zip(ckpt.model.state_dict().items(), disk.model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    assert not ckpt.model.training and not any(p.requires_grad for p in ckpt.model.parameters())


def test_a_model_with_its_own_classes_round_trips_with_its_head(tmp_path):
    from cnn_core.data import DatasetInfo
    from cnn_core.models import num_classes, with_classes

    net = with_classes(create_model("lenet5_bn"), 3)
    info = DatasetInfo("your examples", ("A", "B", "○"), 0.1307, 0.3081, {})
    path = save_checkpoint(tmp_path / "abc.safetensors", net, TrainConfig(), [], info)
    ckpt = load_checkpoint(path)
    assert num_classes(ckpt.model) == 3 and ckpt.info.classes == ("A", "B", "○") and ckpt.info.name == "your examples"
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(net.eval()(x), ckpt.model(x))


@pytest.mark.parametrize("case", ["pickle", "torch.save", "text", "empty"])
def test_uploaded_pickles_and_other_files_are_refused_without_unpickling(tmp_path, case):
    from cnn_core.checkpoints import load_upload

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    if case == "torch.save":
        torch.save({"model": create_model("lenet5_bn").state_dict(), "x": Boom()}, tmp_path / "evil.pt")
        data = (tmp_path / "evil.pt").read_bytes()
    else:
        data = {"pickle": pickle.dumps({"weights": Boom()}), "text": b"hello, model", "empty": b""}[case]
    with pytest.raises(CheckpointError, match=r"^evil\.safetensors is not a (readable )?safetensors checkpoint"):
        load_upload(data, "evil.safetensors")
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(CheckpointError, match=r"evil\.pt is not a \.safetensors file"):
        load_upload(data, "evil.pt")


def test_an_oversized_upload_is_refused_before_it_is_read():
    from cnn_core.checkpoints import MAX_UPLOAD_BYTES, load_upload

    with pytest.raises(CheckpointError, match="is 20.0 MB; a model brought here may be at most 20 MB"):
        load_upload(b"\0" * (MAX_UPLOAD_BYTES + 1), "big.safetensors")


def test_an_upload_cut_anywhere_is_refused_with_one_sentence(good):
    from cnn_core.checkpoints import load_upload

    data, _ = good
    header_end = 8 + int.from_bytes(data[:8], "little")
    cuts = sorted({*range(0, 16), *range(header_end - 40, header_end + 40), *range(header_end, len(data), 997),
                   len(data) - 1})
    for end in cuts:
        with pytest.raises(CheckpointError) as refused:
            load_upload(data[:end], "cut.safetensors")
        assert str(refused.value).startswith("cut.safetensors") and "\n" not in str(refused.value)


def test_an_upload_with_a_byte_changed_anywhere_in_its_header_loads_or_is_refused_with_a_sentence(good):
    import random

    from cnn_core.checkpoints import load_upload

    data, _ = good
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = random.Random(0)
    for _ in range(300):
        mutated = bytearray(data)
        mutated[rng.randrange(header_end)] = rng.randrange(256)
        try:
            load_upload(bytes(mutated), "fuzz.safetensors")
        except CheckpointError as e:
            assert str(e).startswith("fuzz.safetensors")


def test_mismatched_shapes_missing_or_extra_tensors_are_named(good):
    from cnn_core.checkpoints import load_upload

    _, meta = good
    weights = dict(create_model("lenet5_bn").state_dict())
    wrong = {**weights, "conv1.weight": torch.zeros(8, 1, 5, 5)}
    with pytest.raises(CheckpointError, match=r"do not fit model 'lenet5_bn': conv1\.weight is 8x1x5x5 where the "
                                              r"model has 6x1x5x5\.$"):
        load_upload(crafted(wrong, meta), "x.safetensors")
    missing = {k: v for k, v in weights.items() if k != "fc3.bias"}
    with pytest.raises(CheckpointError, match=r"fc3\.bias is missing"):
        load_upload(crafted(missing, meta), "x.safetensors")
    extra = {**weights, "backdoor.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"backdoor\.weight is not in the model"):
        load_upload(crafted(extra, meta), "x.safetensors")


@pytest.mark.parametrize("change, refusal", [
    ({"model_args": {"layers": [{"type": "conv", "channels": 10**7, "kernel": 11}, {"type": "linear", "width": 10**6}]}},
     r"would have [\d,]+ parameters; a model brought here may have at most 5,242,880"),
    ({"model_args": {"layers": [{"type": "act", "fn": "relu"}] * 10**5}}, "100000 layers; at most 64"),
    ({"model_args": {"hidden": 10**9}}, "would have 795,000,000,010 parameters"),
    ({"model_args": {"hidden": "wide"}}, "cannot be built from the arguments it gives"),
    ({"model_args": {"layers": [{"type": "__import__('os')"}]}}, "cannot be built .*unknown layer type"),
    ({"model_args": ["not", "a", "dict"]}, "model arguments are not a dictionary"),
    ({"model_args": {"rm_rf": True}}, r"cannot be built .*TypeError"),
    ({"classes": ["only one"]}, "between 2 and 100 classes"),
    ({"classes": [str(i) for i in range(1000)]}, "between 2 and 100 classes"),
    ({"std": 0}, "cannot normalize an image"),
    ({"model": "skynet"}, "unknown model 'skynet'"),
])
def test_a_malicious_description_is_refused_before_anything_is_allocated(good, change, refusal):
    import time

    from cnn_core.checkpoints import load_upload

    _, meta = good
    model = change.get("model", "mlp" if "hidden" in change.get("model_args", {}) else "custom")
    meta = {**meta, "model": model, **change} if "model_args" in change else {**meta, **change}
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=refusal):
        load_upload(crafted(create_model("lenet5_bn").state_dict(), meta), "evil.safetensors")
    assert time.perf_counter() - start < 5, "refused from its description, not after building it"


@pytest.mark.parametrize("metadata, refusal", [
    ({"meta": "{not json"}, "description cannot be read"),
    ({"meta": "[1, 2]"}, "description is not a dictionary"),
    ({"format_version": "99"}, "newer CNN studio"),
    ({"format_version": "one"}, "description cannot be read"),
    ({"format": "other"}, "not a CNN studio checkpoint"),
])
def test_a_damaged_description_is_refused_with_a_sentence(good, metadata, refusal):
    from cnn_core.checkpoints import load_upload

    _, meta = good
    with pytest.raises(CheckpointError, match=refusal):
        load_upload(crafted(create_model("lenet5_bn").state_dict(), meta, metadata), "odd.safetensors")
