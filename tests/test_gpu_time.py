"""How long a run asks a GPU for: from its config, with a margin, capped; a run that wants more gets a sentence."""

from cnn_core import gpu_time
from cnn_core.config import TrainConfig
from cnn_core.gpu_time import ZEROGPU_MAX_S, estimate_seconds, time_request, train_images


def test_training_images_leave_the_validation_images_out():
    assert train_images(TrainConfig(val_size=5000), 60_000) == 55_000
    assert train_images(TrainConfig(val_size=5000, train_subset=20_000), 60_000) == 20_000
    assert train_images(TrainConfig(val_size=5000), 600) == 300  # make_bundle keeps at most half for validation


def test_the_estimate_grows_with_epochs_and_images_and_small_batches_are_slower():
    base = TrainConfig(epochs=2, batch_size=128)
    seconds = estimate_seconds(base, 60_000, 10_000, gpu=True)
    expected = (gpu_time.STARTUP_S + 2 * 55_000 / gpu_time.GPU_IMAGES_PER_S
                + (2 * 5000 + 10_000) / (gpu_time.GPU_IMAGES_PER_S * gpu_time.EVAL_SPEEDUP))
    assert abs(seconds - expected) < 1e-9
    assert estimate_seconds(TrainConfig(epochs=4, batch_size=128), 60_000, 10_000, gpu=True) > seconds
    assert estimate_seconds(TrainConfig(epochs=2, batch_size=16), 60_000, 10_000, gpu=True) > seconds
    assert estimate_seconds(base, 60_000, 10_000, gpu=False) > seconds  # the CPU is slower


def test_the_request_has_a_margin_and_a_cap_and_a_run_over_it_gets_a_sentence():
    short = time_request(TrainConfig(epochs=1, batch_size=128), 60_000, 10_000)
    assert short.fits and short.seconds == short.wanted_s >= short.estimate_s * gpu_time.MARGIN
    assert short.refusal(TrainConfig(), 55_000) is None
    config = TrainConfig(epochs=10, batch_size=16)
    long = time_request(config, 60_000, 10_000)
    assert not long.fits and long.seconds == ZEROGPU_MAX_S < long.wanted_s
    assert long.refusal(config, 55_000) == (
        f"This run would take up to {long.wanted_s} s (10 epochs of 55,000 images at batch 16), more than the "
        f"{ZEROGPU_MAX_S} s one run may have here: use fewer epochs or images, or a bigger batch.")


def test_the_tutorials_ten_epoch_recipes_fit_in_one_zerogpu_call():
    from cnn_core.presets import PRESETS

    for name, preset in PRESETS.items():
        if preset.config.batch_size >= 32:
            assert time_request(preset.config, 60_000, 10_000).fits, name
