import numpy as np
import pytest
import torch

from cnn_core.drawing import CANVAS_SIDE, antialias_matrix, canvas_to_gray, is_blank, preprocess, scaled_stroke, upscale_digit


def black_canvas(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool → streamlit-drawable-canvas style RGBA: white strokes on opaque black."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask, :3] = 255
    rgba[..., 3] = 255
    return rgba


def transparent_sketch(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool → Gradio Sketchpad style RGBA: black strokes on a transparent layer."""
    rgba = np.zeros((*mask.shape, 4), dtype=np.uint8)
    rgba[mask, 3] = 255
    return rgba


def white_paper(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool → RGB: black strokes on white."""
    return np.where(mask[..., None], 0, 255).astype(np.uint8).repeat(3, axis=2)


def center_of_mass(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(img.shape)
    return (ys * img).sum() / img.sum(), (xs * img).sum() / img.sum()


def ink_box(img: np.ndarray) -> tuple[int, int]:
    """Height and width of the bounding box of the ink in (H, W)."""
    rows, cols = np.nonzero(img.any(1))[0], np.nonzero(img.any(0))[0]
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def stroke_digit(segments: list[tuple[tuple[float, float], tuple[float, float]]], width: float = 1.6) -> np.ndarray:
    """Anti-aliased strokes along (y, x) segments → a uint8 (28, 28) MNIST-like digit."""
    ys, xs = np.indices((28, 28), dtype=np.float32)
    dist = np.full((28, 28), np.inf, dtype=np.float32)
    for (y0, x0), (y1, x1) in segments:
        d = np.array([y1 - y0, x1 - x0], dtype=np.float32)
        t = np.clip(((ys - y0) * d[0] + (xs - x0) * d[1]) / (d @ d), 0, 1)
        dist = np.minimum(dist, np.hypot(ys - y0 - t * d[0], xs - x0 - t * d[1]))
    return (np.clip(width + 0.5 - dist, 0, 1) * 255).astype(np.uint8)


def corner_stroke() -> np.ndarray:
    """An L-shaped thick stroke in the top-right corner of a 280x280 canvas."""
    mask = np.zeros((280, 280), dtype=bool)
    mask[20:120, 200:225] = True
    mask[95:120, 200:270] = True
    return mask


def test_off_centre_stroke_is_fitted_in_20x20_with_centre_of_mass_in_the_middle():
    steps = preprocess(black_canvas(corner_stroke()))
    assert steps.centered.shape == (28, 28)
    assert max(ink_box(steps.centered > 0)) == 20
    com_y, com_x = center_of_mass(steps.centered)
    assert abs(com_y - 14) <= 1 and abs(com_x - 14) <= 1
    assert steps.tensor.shape == (1, 1, 28, 28) and steps.tensor.dtype == torch.float32


def test_aspect_ratio_is_kept():
    mask = np.zeros((280, 280), dtype=bool)
    mask[40:240, 130:150] = True  # 200 tall, 20 wide
    steps = preprocess(black_canvas(mask))
    assert steps.fitted.shape == (20, 2)
    height, width = ink_box(steps.centered > 0.5)
    assert height == 20 and width <= 3


def test_blank_canvas_is_refused_with_a_sentence():
    empty = black_canvas(np.zeros((280, 280), dtype=bool))
    assert is_blank(canvas_to_gray(empty))
    with pytest.raises(ValueError, match="blank"):
        preprocess(empty)
    speck = np.zeros((280, 280), dtype=bool)
    speck[100:103, 100:103] = True
    assert is_blank(canvas_to_gray(black_canvas(speck)))
    assert not is_blank(canvas_to_gray(black_canvas(corner_stroke())))


def test_input_size_32():
    steps = preprocess(black_canvas(corner_stroke()), input_size=32)
    assert steps.centered.shape == (28, 28)
    assert steps.resized.shape == (32, 32)
    assert steps.tensor.shape == (1, 1, 32, 32)
    assert [title for title, _ in steps.steps()][-1] == "model input 32x32"


def test_normalization_uses_mean_and_std():
    steps = preprocess(black_canvas(corner_stroke()), mean=0.5, std=0.25)
    expected = (torch.from_numpy(steps.resized) - 0.5) / 0.25
    torch.testing.assert_close(steps.tensor[0, 0], expected)
    assert steps.tensor.min() == pytest.approx(-2.0)


@pytest.mark.parametrize("render", [transparent_sketch, white_paper, lambda mask: mask.astype(np.float64)])
def test_canvas_kinds_give_the_same_input(render):
    mask = corner_stroke()
    np.testing.assert_array_equal(canvas_to_gray(render(mask)), canvas_to_gray(black_canvas(mask)))
    torch.testing.assert_close(preprocess(render(mask)).tensor, preprocess(black_canvas(mask)).tensor)


def test_upscaled_digit_round_trips():
    seven = stroke_digit([((9, 7), (9, 19)), ((9, 19), (24, 11))])  # fits 20x20, centre of mass near (14, 14)
    drawing = upscale_digit(torch.from_numpy(seven))
    assert drawing.shape == (280, 280, 4) and drawing.dtype == np.uint8
    steps = preprocess(drawing)
    assert np.corrcoef(steps.centered.ravel(), seven.ravel())[0, 1] > 0.8


def test_steps_are_listed_in_order_for_display():
    steps = preprocess(black_canvas(corner_stroke()))
    titles = [title for title, _ in steps.steps()]
    assert titles == ["drawing", "cropped to the ink", "fitted in 20x20", "centred in 28x28", "model input 28x28"]
    for _, arr in steps.steps():
        assert arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1


# A "2" as a pen draws it, in fractions of the canvas's side (x, y): an arc, a diagonal, a base line.
TWO = [(0.30, 0.30), (0.38, 0.21), (0.50, 0.18), (0.62, 0.22), (0.68, 0.33), (0.64, 0.46), (0.54, 0.57),
       (0.42, 0.68), (0.30, 0.80), (0.45, 0.80), (0.60, 0.80), (0.74, 0.80)]


def pen_drawing(points: list[tuple[float, float]], side: int, width: float) -> np.ndarray:
    """The polyline `points` (fractions of the side) drawn with a round, anti-aliased pen `width` px wide on a
    side x side canvas → RGBA uint8, white on opaque black (what the drawable canvas returns)."""
    ys, xs = np.indices((side, side), dtype=np.float32) + 0.5
    dist = np.full((side, side), np.inf, dtype=np.float32)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        x0, y0, x1, y1 = (v * side for v in (x0, y0, x1, y1))
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        dist = np.minimum(dist, np.hypot(xs - x0 - t * dx, ys - y0 - t * dy))
    ink = (np.clip(width / 2 + 0.5 - dist, 0, 1) * 255).astype(np.uint8)
    return np.dstack([ink, ink, ink, np.full_like(ink, 255)])


def test_scaled_stroke_keeps_the_pen_a_fraction_of_the_canvas():
    assert scaled_stroke(18, CANVAS_SIDE) == 18
    assert scaled_stroke(18, 358) == pytest.approx(18 * 358 / 280)
    assert scaled_stroke(14, 140) == 7


@pytest.mark.parametrize("side", [200, 340, 358])
def test_a_digit_drawn_on_any_canvas_size_with_the_scaled_pen_gives_the_same_input(side):
    """The phone's canvas fills the screen's width: the same "2" drawn there with the pen scaled to that size
    reaches the model as it does from the 280-px desktop canvas; with the desktop's pen width it would not."""
    desktop = preprocess(pen_drawing(TWO, CANVAS_SIDE, 18))
    # Centring moves the digit by whole pixels: a digit whose centre of mass lay within a hair of half a pixel
    # could move by one at any size or pen. This one does not (and a model reads either alike).
    assert min(abs(c % 1 - 0.5) for c in center_of_mass(desktop.fitted)) > 0.05
    scaled = preprocess(pen_drawing(TWO, side, scaled_stroke(18, side)))
    unscaled = preprocess(pen_drawing(TWO, side, 18))
    assert scaled.tensor.shape == desktop.tensor.shape == (1, 1, 28, 28)
    assert scaled.fitted.shape == desktop.fitted.shape
    same = np.abs(scaled.resized - desktop.resized)  # the model's input in [0, 1], before normalization
    assert same.mean() < 0.01 and same.max() < 0.15, (same.mean(), same.max())
    differs = np.abs(unscaled.resized - desktop.resized)
    assert differs.mean() > 3 * same.mean(), "the test would not notice an unscaled pen"


def test_fitting_matches_torch_antialiased_resize():
    rng = np.random.default_rng(0)
    for h, w in [(280, 200), (37, 90), (12, 5), (150, 150)]:
        img = rng.random((h, w)).astype(np.float32)
        size = (max(1, round(h * 20 / max(h, w))), max(1, round(w * 20 / max(h, w))))
        ref = torch.nn.functional.interpolate(torch.from_numpy(img)[None, None], size=size, mode="bilinear",
                                              antialias=True)[0, 0].numpy()
        mine = antialias_matrix(h, size[0]) @ img.astype(np.float64) @ antialias_matrix(w, size[1]).T
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-6)


def test_a_thin_upright_stroke_is_fitted_one_pixel_wide_with_its_ink_all_the_way_down():
    mask = np.zeros((280, 280), dtype=bool)
    mask[20:260, 138:143] = True  # 240 tall, 5 wide: fitted 20x1 (torch's own resize repeated the top pixel)
    steps = preprocess(black_canvas(mask))
    assert steps.fitted.shape == (20, 1) and steps.fitted.min() > 0.9


def test_a_symmetric_drawing_is_centred_the_same_whatever_the_order_of_the_sums():
    mask = np.zeros((280, 280), dtype=bool)
    mask[40:240, 100:180] = True  # fitted 20x8: centre of mass exactly at 3.5, a half to round (to even: 10)
    steps = preprocess(black_canvas(mask))
    cols = np.nonzero(steps.centered.any(0))[0]
    assert (cols[0], cols[-1]) == (10, 17)
