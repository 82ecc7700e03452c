"""idx reading, checksums, the fetch chain's failure message, splits, normalization and augmentation."""

import gzip
import hashlib

import pytest
import torch

from cnn_core import data
from cnn_core.data import DataError, load_splits, make_bundle, parse_idx, read_idx
from tests.conftest import idx_bytes, synthetic_digits, write_dataset
from tests.hammer import failures, hammer


def test_idx_round_trip_plain_and_gzip(tmp_path):
    images, labels = synthetic_digits(7)
    (tmp_path / "a").write_bytes(idx_bytes(images))
    (tmp_path / "b.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert (read_idx(tmp_path / "a") == images).all()
    assert (read_idx(tmp_path / "b.gz") == labels).all()


def test_corrupt_idx_files_give_clear_errors():
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x50\x4b\x03\x04junk")
    raw = idx_bytes(synthetic_digits(3)[0])
    with pytest.raises(DataError, match="corrupt"):
        parse_idx(raw[:-10])
    with pytest.raises(DataError, match="header is incomplete"):
        parse_idx(raw[:9])


def test_md5_mismatch_says_what_to_do(tmp_path):
    raw = idx_bytes(synthetic_digits(3)[0])
    (tmp_path / "x").write_bytes(raw)
    assert read_idx(tmp_path / "x", hashlib.md5(raw).hexdigest()).shape == (3, 28, 28)
    with pytest.raises(DataError, match="checksum.*fetch-data"):
        read_idx(tmp_path / "x", "0" * 32)


def test_verified_load_rejects_files_that_are_not_mnist(tiny_data_dir, monkeypatch):
    monkeypatch.setenv("CNN_DATA_VERIFY", "1")
    data._load_raw.cache_clear()
    with pytest.raises(DataError, match="checksum"):
        load_splits("mnist")


def test_load_splits_from_data_dir(tiny_data_dir):
    for name in ("mnist", "fashion-mnist"):  # plain and gzipped files
        splits = load_splits(name)
        assert splits["train"].images.shape == (600, 28, 28) and splits["train"].images.dtype == torch.uint8
        assert splits["test"].labels.dtype == torch.int64 and len(splits["test"]) == 200


def test_missing_data_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="fetch-data"):
        load_splits("mnist")


def test_fetch_lists_every_failed_source(tmp_path, monkeypatch):
    def offline(name, work):
        raise OSError("Name or service not known")

    monkeypatch.setattr(data, "SOURCES", {"source one": offline, "source two": offline})
    with pytest.raises(DataError) as err:
        data.fetch("mnist", tmp_path)
    message = str(err.value)
    assert "source one: Name or service not known" in message and "source two" in message
    assert "train-images-idx3-ubyte" in message and str(tmp_path.resolve()) in message


def test_fetch_installs_verified_files(tmp_path, monkeypatch):
    source = write_dataset(tmp_path / "src", n_train=20, n_test=10, gz=True)
    sums = {p.name[:-3]: hashlib.md5(gzip.decompress(p.read_bytes())).hexdigest() for p in source.iterdir()}
    monkeypatch.setitem(data.DATASETS, "mnist", data.DatasetInfo("mnist", data.DATASETS["mnist"].classes,
                                                                  0.1307, 0.3081, sums))
    monkeypatch.setattr(data, "SOURCES", {"fake": lambda name, work: source})
    messages = []
    folder = data.fetch("mnist", tmp_path / "out", log=messages.append)
    assert sorted(p.name for p in folder.iterdir()) == sorted(sums)
    assert any("checksums verified" in m for m in messages)
    assert data.missing_files("mnist", tmp_path / "out") == []


def test_bundle_split_is_seeded_and_disjoint(tiny_data_dir):
    a = make_bundle("mnist", val_size=100)
    b = make_bundle("mnist", val_size=100)
    assert len(a.val) == 100 and len(a.train) == 500
    assert torch.equal(a.val.images, b.val.images)
    sub = make_bundle("mnist", val_size=100, train_subset=50)
    assert len(sub.train) == 50


def test_normalize_and_resize():
    images = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    x = data.normalize(images, 0.5, 0.25)
    assert x.shape == (2, 1, 28, 28) and torch.allclose(x, torch.full_like(x, 2.0))
    assert data.normalize(images, 0.5, 0.25, size=32).shape == (2, 1, 32, 32)


def test_batches_cover_every_index_once():
    batches = list(data.batch_indices(10, 4, torch.Generator().manual_seed(0), "cpu"))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))


def test_augment_keeps_shape_background_and_moves_pixels():
    x = data.normalize(torch.from_numpy(synthetic_digits(16)[0]), 0.1307, 0.3081)
    y = data.augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert torch.isclose(y.amin(), x.amin(), atol=1e-4)
    assert not torch.allclose(x, y)
    assert (y.mean() - x.mean()).abs() < 0.2  # a warp, not a different image


def test_sessions_asking_at_once_share_one_load(tmp_path, monkeypatch):
    """Thirty students opening Inspect at once must not each read and decode the data set."""
    write_dataset(tmp_path / "mnist", n_train=2000, n_test=500)
    reads = []
    real_read = data.read_idx
    monkeypatch.setattr(data, "read_idx", lambda *a, **k: reads.append(a[0]) or real_read(*a, **k))
    results = hammer([lambda: load_splits("mnist", tmp_path, verify=False) for _ in range(16)], threads=16)
    assert not failures(results), failures(results)
    assert len(reads) == 4, f"the data set was read {len(reads) // 4} times for 16 sessions asking at once"
    first = results[0][0]
    assert all(splits is first for splits, _ in results)  # one set of tensors, shared
    assert len(first["train"]) == 2000 and len(first["test"]) == 500
