"""Exports of a checkpoint: safetensors + JSON, TorchScript, ONNX, and a standalone PyTorch training script
(and, through cnn_core/webpage.py, a stand-alone web page: `--format web`).

Every export takes the model's normalized (B, 1, S, S) input and returns logits (B, 10); the JSON file
(and the metadata inside TorchScript and ONNX) says S, the mean/std and the class names.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from cnn_core.checkpoints import FORMAT, FORMAT_VERSION, Checkpoint, load_checkpoint
from cnn_core.models import count_parameters, layer_table, outputs_probabilities
from cnn_core.runs.records import to_dict

FORMATS = ("safetensors", "torchscript", "onnx", "script")
ONNX_OPSET = 17  # a widely supported opset that has every layer our models use


def _prepare(ckpt: Checkpoint | Path | str, folder: Path) -> tuple[Checkpoint, Path]:
    """The checkpoint (loaded when given a path) and the output folder, created."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return (ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(Path(ckpt))), folder


def base_name(ckpt: Checkpoint) -> str:
    """'<model>-<dataset>', e.g. 'lenet5_bn-mnist': the stem of every exported file."""
    return f"{ckpt.meta['model']}-{ckpt.info.name}"


def export_metadata(ckpt: Checkpoint) -> dict[str, Any]:
    """What a user of the exported model needs: input shape and normalization, classes, layers, config, scores."""
    size = ckpt.model.input_size
    return {
        "model": ckpt.meta["model"],
        "model_args": ckpt.meta.get("model_args", {}),
        "dataset": ckpt.info.name,
        "classes": list(ckpt.info.classes),
        "input": {
            "shape": ["batch", 1, size, size],
            "dtype": "float32",
            "mean": ckpt.info.mean,
            "std": ckpt.info.std,
            "preprocessing": f"pixels / 255 (ink = 1), resized bilinearly to {size}x{size}, then (x - mean) / std",
        },
        "output": {"shape": ["batch", len(ckpt.info.classes)],
                   "meaning": "probabilities (the model ends in a softmax)" if outputs_probabilities(ckpt.model)
                   else "logits; softmax gives probabilities"},
        "parameters": count_parameters(ckpt.model),
        "layers": [{**row, "output shape": list(row["output shape"])} for row in layer_table(ckpt.model)],
        "config": ckpt.config.to_dict(),
        "test_acc": ckpt.test_acc,
        "best_val_acc": ckpt.meta.get("best_val_acc"),
        "epochs": [to_dict(r) for r in ckpt.history.epochs],
        "source": ckpt.path.name,
        "exported_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def export_checkpoint(ckpt: Checkpoint | Path | str, folder: Path) -> Path:
    """Weights as `<name>.safetensors` (plain state_dict keys; also a valid CNN studio checkpoint) + `<name>.json`."""
    ckpt, folder = _prepare(ckpt, folder)
    path = folder / f"{base_name(ckpt)}.safetensors"
    weights = {k: v.detach().cpu().contiguous() for k, v in ckpt.model.state_dict().items()}
    header = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "meta": json.dumps(ckpt.meta)}
    save_file(weights, path, metadata=header)
    path.chmod(0o644)  # safetensors writes 0600; an export is meant to be shared
    path.with_suffix(".json").write_text(json.dumps(export_metadata(ckpt), indent=2))
    return path


def export_torchscript(ckpt: Checkpoint | Path | str, folder: Path) -> Path:
    """`<name>.torchscript.pt` via torch.jit.script (any batch size); metadata in its extra file `meta.json`."""
    ckpt, folder = _prepare(ckpt, folder)
    path = folder / f"{base_name(ckpt)}.torchscript.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated upstream but still the one-file format many tools load
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(copy.deepcopy(ckpt.model).eval())  # a copy: the model may be shared
        torch.jit.save(scripted, str(path), _extra_files={"meta.json": json.dumps(export_metadata(ckpt))})
    return path


class _WithMaps(nn.Module):
    """A Net that also returns the output of its child `layer`: (B, 1, S, S) → (logits (B, K), maps (B, C, H, W))."""

    def __init__(self, model: nn.Sequential, layer: str):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = x
        for name, module in self.model.named_children():
            x = module(x)
            if name == self.layer:
                maps = x
        return x, maps


def onnx_model(ckpt: Checkpoint, layer: str | None = None) -> Any:
    """The model as an onnx.ModelProto: 'input' (batch, 1, S, S) → 'logits' (batch, K) and, when `layer` is
    named, 'maps' (batch, C, H, W), that layer's output; the metadata says S, mean, std, classes and the layer."""
    import onnx

    model = copy.deepcopy(ckpt.model).eval()  # a copy: the model may be shared
    names = dict(model.named_children())
    if layer is not None and layer not in names:
        raise ValueError(f"{ckpt.meta['model']} has no layer {layer!r}; choose from {', '.join(names)}.")
    outputs = ["logits"] if layer is None else ["logits", "maps"]
    size = ckpt.model.input_size
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter: the dynamo one needs onnxscript, not a dependency
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model if layer is None else _WithMaps(model, layer), (torch.zeros(1, 1, size, size),),
                          buffer, dynamo=False, input_names=["input"], output_names=outputs,
                          opset_version=ONNX_OPSET, dynamic_axes={name: {0: "batch"} for name in ["input", *outputs]})
    proto = onnx.load_from_string(buffer.getvalue())
    meta = export_metadata(ckpt)
    onnx.helper.set_model_props(proto, {
        "model": meta["model"], "dataset": meta["dataset"], "classes": json.dumps(meta["classes"]),
        "mean": str(ckpt.info.mean), "std": str(ckpt.info.std), "input_size": str(size),
        **({"maps_layer": layer} if layer is not None else {}),
    })
    onnx.checker.check_model(proto)
    return proto


def export_onnx(ckpt: Checkpoint | Path | str, folder: Path) -> Path:
    """`<name>.onnx`: input 'input' (batch, 1, S, S) with a dynamic batch axis → 'logits' (batch, 10)."""
    import onnx

    ckpt, folder = _prepare(ckpt, folder)
    path = folder / f"{base_name(ckpt)}.onnx"
    onnx.save(onnx_model(ckpt), str(path))
    return path


# ---------------------------------------------------------------- the standalone script

ALWAYS, KERNEL = "<always>", "<kernel_size>"  # keyword defaults: always written; the layer's own kernel_size
# layer type → (positional attributes, {keyword attribute: default}); a keyword equal to its default is left out.
_LAYER_ARGS: dict[type[nn.Module], tuple[tuple[str, ...], dict[str, Any]]] = {
    nn.Conv2d: (("in_channels", "out_channels"), {"kernel_size": ALWAYS, "stride": (1, 1), "padding": (0, 0),
                                                   "dilation": (1, 1), "groups": 1, "bias": True,
                                                   "padding_mode": "zeros"}),
    nn.BatchNorm1d: (("num_features",), {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}),
    nn.BatchNorm2d: (("num_features",), {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}),
    nn.Linear: (("in_features", "out_features"), {"bias": True}),
    nn.MaxPool2d: (("kernel_size",), {"stride": KERNEL, "padding": 0, "dilation": 1, "ceil_mode": False}),
    nn.AvgPool2d: (("kernel_size",), {"stride": KERNEL, "padding": 0, "ceil_mode": False,
                                      "count_include_pad": True, "divisor_override": None}),
    nn.AdaptiveAvgPool2d: (("output_size",), {}),
    nn.AdaptiveMaxPool2d: (("output_size",), {}),
    nn.Flatten: ((), {"start_dim": 1, "end_dim": -1}),
    nn.Dropout: ((), {"p": 0.5, "inplace": False}),
    nn.Dropout2d: ((), {"p": 0.5, "inplace": False}),
    nn.ReLU: ((), {"inplace": False}),
    nn.Softmax: ((), {"dim": ALWAYS}),
    nn.LeakyReLU: ((), {"negative_slope": 0.01, "inplace": False}),
    nn.ELU: ((), {"alpha": 1.0, "inplace": False}),
    nn.GELU: ((), {"approximate": "none"}),
    nn.SiLU: ((), {"inplace": False}),
    nn.Tanh: ((), {}),
    nn.Sigmoid: ((), {}),
}


def _literal(value: Any) -> str:
    """Python source for a plain value, strings in double quotes like the rest of the script."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def layer_code(module: nn.Module) -> str:
    """The constructor call that rebuilds `module`, e.g. 'nn.Conv2d(1, 6, kernel_size=(5, 5))'."""
    kind = type(module)
    if kind not in _LAYER_ARGS:
        raise ValueError(f"Cannot write a {kind.__name__} layer as code; the script supports "
                         f"{', '.join(t.__name__ for t in _LAYER_ARGS)}.")
    positional, keywords = _LAYER_ARGS[kind]

    def value(attr: str) -> Any:
        return module.bias is not None if attr == "bias" else getattr(module, attr)

    args = [_literal(value(a)) for a in positional]
    for attr, default in keywords.items():
        current = value(attr)
        if default == KERNEL:
            default = value("kernel_size")
        if default == ALWAYS or current != default:
            args.append(f"{attr}={_literal(current)}")
    return f"nn.{kind.__name__}({', '.join(args)})"


def model_code(model: nn.Sequential, indent: str = "        ") -> str:
    """One `("name", nn.Layer(...)),` line per named child."""
    return "\n".join(f"{indent}({_literal(name)}, {layer_code(m)})," for name, m in model.named_children())


SCRIPT_CONFIG = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment",
                 "label_smoothing", "seed", "train_subset")  # the TrainConfig fields the script uses
_SCRIPT = '''\
"""Train {model} on {dataset} with plain PyTorch and torchvision: written by CNN studio from {source}.

    python {filename} --data ./data                      # trains with the configuration below
    python {filename} --epochs 1 --max-batches 20        # a quick check that everything runs
    python {filename} --weights {weights} --epochs 0   # test the exported weights

torchvision reads the data from <data>/{tv_class}/raw/ and downloads it there when it is missing.
The model takes normalized (B, 1, {size}, {size}) images and returns logits (B, 10).
"""

import argparse
import copy
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import datasets, transforms

CONFIG = {{  # the run's configuration in CNN studio (no validation split or early stopping here)
{config}}}
INPUT_SIZE = {size}
MEAN, STD = {mean}, {std}  # the run's normalization of pixels in [0, 1] (0, 1: none)


def build_model() -> nn.Sequential:
    """{model}: (B, 1, {size}, {size}) → logits (B, 10)."""
    return nn.Sequential(OrderedDict([
{layers}
    ]))


def load_data(root: str, train: bool) -> torch.utils.data.Dataset:
    steps = [transforms.ToTensor()]  # uint8 pixels → floats in [0, 1]
    if INPUT_SIZE != 28:
        steps.append(transforms.Resize(INPUT_SIZE))  # bilinear, like CNN studio
    if train and CONFIG["augment"]:  # close to CNN studio's batched random shift, rotation and scale
        steps.append(transforms.RandomAffine(degrees=10, translate=(2 / 28, 2 / 28), scale=(0.9, 1.1)))
    steps.append(transforms.Normalize((MEAN,), (STD,)))
    data = datasets.{tv_class}(root, train=train, download=True, transform=transforms.Compose(steps))
    if train and CONFIG["train_subset"]:
        data = torch.utils.data.Subset(data, range(min(CONFIG["train_subset"], len(data))))
    return data


def make_optimizer(params, lr: float) -> torch.optim.Optimizer:
    if CONFIG["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=CONFIG["weight_decay"])
    if CONFIG["optimizer"] == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=CONFIG["momentum"], weight_decay=CONFIG["weight_decay"])
    if CONFIG["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=CONFIG["weight_decay"])
    return torch.optim.AdamW(params, lr=lr, weight_decay=CONFIG["weight_decay"])


def make_scheduler(opt: torch.optim.Optimizer, lr: float, total_steps: int):
    """Stepped once per batch. 'step' divides the lr by 10 at 1/3 and 2/3 of training."""
    if CONFIG["schedule"] == "step":
        return torch.optim.lr_scheduler.MultiStepLR(opt, [total_steps // 3, 2 * total_steps // 3], gamma=0.1)
    if CONFIG["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    if CONFIG["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)
    return None


@torch.no_grad()
def test(model: nn.Module, loader, device: str) -> tuple[int, int]:
    """(correct, total) on the whole loader."""
    model.eval()
    correct = total = 0
    for x, y in loader:
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        total += len(y)
    return correct, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="./data", help="torchvision data root (default: ./data)")
    parser.add_argument("--epochs", type=int, default=CONFIG["epochs"], help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=CONFIG["batch_size"], help="images per step")
    parser.add_argument("--lr", type=float, default=CONFIG["lr"], help="learning rate")
    parser.add_argument("--max-batches", type=int, default=0, help="stop each epoch after N batches (0: all)")
    parser.add_argument("--weights", help="start from these weights (.safetensors exported by CNN studio)")
    parser.add_argument("--save", help="write the trained weights to this .safetensors file")
    parser.add_argument("--seed", type=int, default=CONFIG["seed"], help="random seed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    model = build_model().to(args.device)
    if args.weights:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.weights))
    train_loader = torch.utils.data.DataLoader(load_data(args.data, True), batch_size=args.batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(load_data(args.data, False), batch_size=1000)
    steps = min(len(train_loader), args.max_batches or len(train_loader))
    opt = make_optimizer(model.parameters(), args.lr)
    sched = make_scheduler(opt, args.lr, max(1, steps * args.epochs))
    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch, (x, y) in enumerate(train_loader, 1):
            x, y = x.to(args.device), y.to(args.device)
            loss = F.cross_entropy(model(x), y, label_smoothing=CONFIG["label_smoothing"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if batch % 100 == 0 or batch == steps:
                print(f"epoch {{epoch}} batch {{batch}}/{{steps}} loss {{loss.item():.4f}}")
            if batch == steps:
                break
    correct, total = test(model, test_loader, args.device)
    print(f"test accuracy: {{correct / total:.4f}} ({{correct}}/{{total}})")
    if args.save:
        from safetensors.torch import save_file

        save_file({{k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}}, args.save)
        print(f"weights: {{args.save}}")


if __name__ == "__main__":
    main()
'''


def script_source(ckpt: Checkpoint) -> str:
    """The text of a standalone training script for `ckpt`'s model and configuration."""
    config = {key: getattr(ckpt.config, key) for key in SCRIPT_CONFIG}
    return _SCRIPT.format(
        model=ckpt.meta["model"], dataset=ckpt.info.name, source=ckpt.path.name,
        filename=f"train_{ckpt.meta['model']}.py", weights=f"{base_name(ckpt)}.safetensors",
        tv_class="MNIST" if ckpt.info.name == "mnist" else "FashionMNIST",
        size=ckpt.model.input_size, mean=ckpt.info.mean, std=ckpt.info.std,
        config="".join(f"    {_literal(key)}: {_literal(value)},\n" for key, value in config.items()),
        layers=model_code(ckpt.model),
    )


def export_script(ckpt: Checkpoint | Path | str, folder: Path) -> Path:
    """`train_<model>.py`: the model as nn.Sequential code, the run's config, a torchvision training loop."""
    ckpt, folder = _prepare(ckpt, folder)
    if ckpt.info.name not in ("mnist", "fashion-mnist"):
        raise ValueError(f"The script reads MNIST or Fashion-MNIST with torchvision, not {ckpt.info.name!r}.")
    path = folder / f"train_{ckpt.meta['model']}.py"
    path.write_text(script_source(ckpt))
    return path


EXPORTERS = {"safetensors": export_checkpoint, "torchscript": export_torchscript, "onnx": export_onnx,
             "script": export_script}


def export_all(ckpt: Checkpoint | Path | str, folder: Path) -> dict[str, Path]:
    """Every format into `folder`: {'safetensors', 'metadata' (the JSON), 'torchscript', 'onnx', 'script'} → path."""
    ckpt, folder = _prepare(ckpt, folder)
    paths = {fmt: export(ckpt, folder) for fmt, export in EXPORTERS.items()}
    return {"safetensors": paths["safetensors"], "metadata": paths["safetensors"].with_suffix(".json"),
            **{fmt: p for fmt, p in paths.items() if fmt != "safetensors"}}


def format_size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.2f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.1f} kB"


# ---------------------------------------------------------------- command line


def cmd_export(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(Path(args.checkpoint))
    folder = Path(args.out) if args.out else Path("build") / "export" / base_name(ckpt)
    if args.format == "web":  # needs onnxruntime-web vendored (`make web`); raises NoRuntime with a sentence if not
        from cnn_core.webpage import export_web

        paths = {"web": export_web(ckpt, folder, args.layer)}
    elif args.format == "all":
        paths = export_all(ckpt, folder)
    else:
        paths = {args.format: EXPORTERS[args.format](ckpt, folder)}
    width = max(len(fmt) for fmt in paths)
    for fmt, path in paths.items():
        print(f"{fmt.ljust(width)}  {format_size(path.stat().st_size).rjust(9)}  {path}")
    return 0


def add_export_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `export CHECKPOINT --format … --out DIR [--layer NAME]` on the CLI's subparsers."""
    parser = subparsers.add_parser("export", help="export a checkpoint: safetensors + JSON, TorchScript, ONNX, script, "
                                                  "or a stand-alone web page")
    parser.add_argument("checkpoint", help="a .safetensors checkpoint")
    parser.add_argument("--format", default="all", choices=["all", *FORMATS, "web"],
                        help="what to write (default: all, every format but web); web: <model>-<dataset>.html, one "
                             "self-contained page that draws and predicts in the browser (needs `make web` once)")
    parser.add_argument("--layer", help="web: the layer whose feature maps the page shows (default: the first conv)")
    parser.add_argument("--out", help="folder for the files (default: build/export/<model>-<dataset>)")
    parser.set_defaults(func=cmd_export)
