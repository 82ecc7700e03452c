"""How robust is a prediction (cnn_core/robustness.py): each transform against a PyTorch or NumPy reference, the
sweep as one forward equal to each value predicted alone, and one shared model hammered from many threads."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnn_core.robustness as robustness
from cnn_core.checkpoints import load_checkpoint
from cnn_core.drawing import preprocess, upscale_digit
from cnn_core.inspect import predict
from cnn_core.robustness import SWEEPS, Perturbation, perturb, probabilities, shift, sweep
from tests.conftest import synthetic_digits
from tests.hammer import failures, hammer

PRETRAINED = "checkpoints/lenet5_bn-mnist.safetensors"


@pytest.fixture(scope="module")
def shared():
    return load_checkpoint(PRETRAINED)


@pytest.fixture(scope="module")
def drawn():
    return preprocess(upscale_digit(synthetic_digits(1, seed=3)[0][0]), 32, 0.1307, 0.3081)


def images(n=3, seed=0) -> torch.Tensor:
    return torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(seed))


def one(x: torch.Tensor, **change) -> torch.Tensor:
    return perturb(x[None], [Perturbation(**change)])[0]


def test_nothing_changed_is_exactly_the_draw_pages_model_input_and_reading(shared, drawn):
    views, probs = probabilities(shared.model, shared.info, drawn.centered, [Perturbation()])
    np.testing.assert_array_equal(views[0], drawn.centered)
    inputs = robustness.model_inputs(torch.from_numpy(views), 32, shared.info.mean, shared.info.std)
    assert torch.equal(inputs, drawn.tensor)
    np.testing.assert_array_equal(probs[0], predict(shared.model, drawn.tensor)[0])


def test_rotate_by_zero_or_a_full_turn_is_the_identity_and_by_90_is_rot90():
    x = images()
    for i, image in enumerate(x):
        assert torch.equal(one(image, rotate=0), image)
        torch.testing.assert_close(one(image, rotate=360), image, atol=1e-5, rtol=0)
        torch.testing.assert_close(one(image, rotate=90), torch.rot90(image, 1, (0, 1)), atol=1e-5, rtol=0)
        torch.testing.assert_close(one(image, rotate=-90), torch.rot90(image, -1, (0, 1)), atol=1e-5, rtol=0)
    dot = torch.zeros(28, 28)
    dot[2, 13:15] = 1  # at the top …
    assert torch.nonzero(one(dot, rotate=90) > 0.5).tolist() == [[13, 2], [14, 2]]  # … goes left: counter-clockwise


def test_scale_two_is_f_interpolates_doubling_cropped_to_the_centre():
    x = images()
    doubled = F.interpolate(x[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0, 14:42, 14:42]
    torch.testing.assert_close(perturb(x, [Perturbation(scale=2.0)] * 3), doubled, atol=1e-5, rtol=0)
    assert torch.equal(one(x[0], scale=1.0), x[0])


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, 0), (-4, 0), (0, 5), (0, -2), (2, -7), (-27, 1), (28, 0), (-40, -40)])
def test_shift_is_torch_roll_with_zero_fill(dx, dy):
    x = images(1)[0]
    rolled = torch.roll(x, (dy, dx), (0, 1))
    index = torch.arange(28)
    mask = ((index - dy >= 0) & (index - dy < 28))[:, None] & ((index - dx >= 0) & (index - dx < 28))[None]  # not wrapped
    expected = torch.where(mask, rolled, torch.zeros(()))
    assert torch.equal(shift(x, dx, dy), expected)
    assert torch.equal(one(x, shift_x=dx, shift_y=dy), expected)


def neighbourhood(image: np.ndarray, reduce) -> np.ndarray:
    """Each pixel's 3x3 neighbourhood (within the field) reduced by `reduce`: dilation (max) or erosion (min)."""
    out = np.empty_like(image)
    for r in range(image.shape[0]):
        for c in range(image.shape[1]):
            out[r, c] = reduce(image[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2])
    return out


def test_thicker_is_a_3x3_dilation_and_thinner_a_3x3_erosion_step_by_step():
    x = images(1)[0]
    once = neighbourhood(x.numpy(), np.max)
    np.testing.assert_array_equal(one(x, thickness=1).numpy(), once)
    np.testing.assert_array_equal(one(x, thickness=2).numpy(), neighbourhood(once, np.max))
    np.testing.assert_array_equal(one(x, thickness=-1).numpy(), neighbourhood(x.numpy(), np.min))
    mixed = perturb(images(3), [Perturbation(thickness=t) for t in (1, -1, 0)])  # one batch, several counts
    for image, t, out in zip(images(3), (1, -1, 0), mixed, strict=True):
        assert torch.equal(out, one(image, thickness=t))


def test_noise_is_seeded_scaled_and_clipped():
    gray = torch.full((28, 28), 0.5)
    a, b = one(gray, noise=0.1, seed=1), one(gray, noise=0.1, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, one(gray, noise=0.1, seed=2))
    assert abs(float((a - gray).std()) - 0.1) < 0.02
    pattern = torch.randn(28, 28, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(one(gray, noise=0.2, seed=1), (gray + 0.2 * pattern).clamp(0, 1))  # one pattern, scaled
    loud = one(gray, noise=5.0)
    assert loud.min() == 0 and loud.max() == 1
    assert torch.equal(one(gray, noise=0.0), gray)


@pytest.mark.parametrize("name", list(SWEEPS))
def test_a_sweep_is_one_forward_equal_to_each_value_predicted_alone(shared, drawn, name, monkeypatch):
    calls = []

    def counted(model, x):
        calls.append(len(x))
        return predict(model, x)

    monkeypatch.setattr(robustness, "predict", counted)
    values, views, probs = sweep(shared.model, shared.info, drawn.centered, name)
    assert calls == [len(SWEEPS[name].values())] and probs.shape == (len(values), 10) and views.shape[1:] == (28, 28)
    field = SWEEPS[name].field
    kind = type(getattr(Perturbation(), field))
    for value, view, row in zip(values, views, probs, strict=True):
        alone_view, alone = probabilities(shared.model, shared.info, drawn.centered, [Perturbation(**{field: kind(value)})])
        np.testing.assert_array_equal(view, alone_view[0])
        np.testing.assert_allclose(row, alone[0], rtol=0, atol=1e-5)


def test_an_unknown_transform_or_mismatched_batch_says_what_to_do(shared, drawn):
    with pytest.raises(ValueError, match="choose one of shift right"):
        sweep(shared.model, shared.info, drawn.centered, "melt")
    with pytest.raises(ValueError, match="2 images but 1 perturbations"):
        perturb(images(2), [Perturbation()])


def test_sweeps_from_many_threads_on_one_shared_model_match_each_alone(shared, drawn):
    names = list(SWEEPS)
    alone = {name: sweep(shared.model, shared.info, drawn.centered, name)[2] for name in names}
    order = [names[i % len(names)] for i in range(96)]
    results = hammer([lambda n=n: sweep(shared.model, shared.info, drawn.centered, n)[2] for n in order], 8)
    assert not failures(results), failures(results)
    for name, (probs, _) in zip(order, results, strict=True):
        np.testing.assert_allclose(probs, alone[name], rtol=0, atol=1e-5)
    assert not shared.model.training and not any(p.requires_grad for p in shared.model.parameters())
