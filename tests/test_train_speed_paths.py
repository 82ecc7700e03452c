"""fit's speed paths: which ones a device gets, that GPU-only ones stay off on the CPU, and that the
faster code computes what the plain code did (resize, fused optimizers, running metrics)."""

import pytest
import torch
import torch.nn.functional as F

from cnn_core import train
from cnn_core.config import TrainConfig
from cnn_core.data import DataBundle, normalize
from cnn_core.models import create_model
from cnn_core.train import fast_paths, fit


def tiny_config(**kw):
    base = dict(model="lenet_modern", epochs=1, batch_size=32, lr=3e-3, metrics_every=5, val_size=200)
    return TrainConfig(**{**base, **kw})


def test_cpu_gets_only_the_fused_optimizer():
    paths = fast_paths("cpu")
    assert paths.fused_optimizer
    assert not (paths.channels_last or paths.bf16 or paths.compile)


def test_cuda_gets_the_gpu_switches(monkeypatch):
    paths = fast_paths("cuda")  # pure logic: needs no GPU
    assert paths.channels_last and paths.bf16 and paths.fused_optimizer and not paths.compile
    assert paths.eval_batch > fast_paths("cpu").eval_batch
    monkeypatch.setattr(train, "CUDA_COMPILE", True)
    monkeypatch.setattr(train, "CUDA_BF16", False)
    assert fast_paths("cuda:0").compile and not fast_paths("cuda:0").bf16


def test_gpu_switches_are_skipped_on_cpu(tiny_bundle, monkeypatch):
    for name in ("CUDA_CHANNELS_LAST", "CUDA_BF16", "CUDA_COMPILE"):
        monkeypatch.setattr(train, name, True)

    def no_compile(*args, **kwargs):
        raise AssertionError("torch.compile must not run on the CPU")

    monkeypatch.setattr(torch, "compile", no_compile)
    model = create_model("lenet5_bn")
    state = fit(tiny_config(model="lenet5_bn", augment=True), data=tiny_bundle, model=model)
    assert state.status == "finished" and state.test_acc > 0.3
    assert model.conv1.weight.is_contiguous()  # not converted to channels-last


@pytest.mark.parametrize("size", [32, 20, 28])
def test_resize_matches_interpolate(size):
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    reference = F.interpolate(images.unsqueeze(1).float() / 255, size=(size, size), mode="bilinear",
                              align_corners=False)
    x = normalize(images, 0.1307, 0.3081, size)
    assert x.shape == (5, 1, size, size) and x.is_contiguous()
    assert torch.allclose(x, (reference - 0.1307) / 0.3081, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw"])
def test_fused_optimizers_step_like_the_plain_ones(optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=0.01, weight_decay=1e-4)
    models = [create_model("lenet_modern") for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    plain = train.make_optimizer(cfg, models[0].parameters())
    opts = [plain, train._optimizer(cfg, models[1].parameters(), fused=True)]
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for _ in range(3):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.allclose(a, b, atol=1e-5)


def test_epoch_metrics_do_not_depend_on_the_report_interval(tiny_bundle):
    every_step = fit(tiny_config(metrics_every=1), data=tiny_bundle)
    sparse = fit(tiny_config(metrics_every=7), data=tiny_bundle)  # 19 steps: a remainder after the last report
    epoch, sparse_epoch = every_step.history.epochs[0], sparse.history.epochs[0]
    assert sparse_epoch.train_loss == pytest.approx(epoch.train_loss, rel=1e-5)
    assert sparse_epoch.train_acc == pytest.approx(epoch.train_acc)
    sizes = [32] * 18 + [600 - 18 * 32]
    mean = sum(r.train_loss * n for r, n in zip(every_step.history.steps, sizes, strict=True)) / 600
    assert epoch.train_loss == pytest.approx(mean, rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_fast_paths_train(tiny_bundle):
    data = DataBundle(tiny_bundle.info, tiny_bundle.train.to("cuda"), tiny_bundle.val.to("cuda"),
                            tiny_bundle.test.to("cuda"))
    model = create_model("lenet5_bn")
    state = fit(tiny_config(model="lenet5_bn", device="cuda", augment=True), data=data, model=model)
    assert state.status == "finished" and state.test_acc > 0.3
    assert model.conv2.weight.is_contiguous(memory_format=torch.channels_last)
