"""Training curves: every series the live view and the run comparison draw, from a run's history records; the
marks of what was set by hand; the layers' gradient and weight figures."""

from cnn_core.plots.training import curves_figure, layers_figure, overlay_figure, weight_hist_figure

HISTORY = [
    {"event": "step", "step": 50, "train_loss": 1.2, "train_acc": 0.6, "lr": 0.01},
    {"event": "epoch", "epoch": 1, "step": 72, "train_loss": 0.9, "train_acc": 0.7, "val_loss": 1.0,
     "val_acc": 0.68, "lr": 0.01, "images_per_s": 900.0},
    {"event": "epoch", "epoch": 2, "step": 144, "train_loss": 0.7, "train_acc": 0.8, "val_loss": 0.8,
     "val_acc": 0.75, "lr": 0.005, "images_per_s": 950.0},
]


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_curves_draw_every_series_of_the_history():
    fig = curves_figure(HISTORY)
    assert list(trace(fig, "train loss (running)").y) == [1.2]
    assert list(trace(fig, "val acc (epoch)").x) == [72, 144] and list(trace(fig, "val acc (epoch)").y) == [0.68, 0.75]
    assert list(trace(fig, "images/s per epoch").y) == [900.0, 950.0]


def test_learning_rate_uses_epoch_ends_too_so_a_short_run_still_has_a_line():
    lr = trace(curves_figure(HISTORY), "lr")
    assert list(lr.x) == [50, 72, 144] and list(lr.y) == [0.01, 0.01, 0.005]
    assert lr.mode == "lines"
    assert curves_figure(HISTORY).layout.yaxis3.rangemode == "tozero"


def test_a_lone_point_is_a_marker_not_an_invisible_line():
    fig = curves_figure(HISTORY)
    assert trace(fig, "train loss (running)").mode == "markers"
    assert trace(fig, "val acc (epoch)").mode == "lines+markers"
    two_steps = [*HISTORY, {"event": "step", "step": 100, "train_loss": 0.8, "train_acc": 0.75, "lr": 0.01}]
    running = trace(curves_figure(two_steps), "train loss (running)")
    assert running.mode == "lines" and list(running.x) == [50, 100]


def test_overlay_has_one_colour_per_run():
    fig = overlay_figure({"a": HISTORY, "b": HISTORY})
    colours = {t.name: t.line.color for t in fig.data if t.showlegend is not False}
    assert set(colours) == {"a", "b"} and len(set(colours.values())) == 2


def test_one_column_stacks_the_panels_in_reading_order_for_a_phone():
    def panels(fig):  # subplot title → (top of its y domain, left of its x domain)
        return {a.text: (round(a.y, 3), round(a.x, 3)) for a in fig.layout.annotations}

    wide, tall = curves_figure(HISTORY), curves_figure(HISTORY, height=860, columns=1)
    assert [t.name for t in tall.data] == [t.name for t in wide.data]
    order = ["loss", "accuracy", "learning rate", "images / s"]
    assert sorted(order, key=lambda title: -panels(tall)[title][0]) == order  # one under the other
    assert len({x for _, x in panels(tall).values()}) == 1 and len({x for _, x in panels(wide).values()}) == 2
    assert trace(tall, "lr").yaxis == "y3" and tall.layout.yaxis3.rangemode == "tozero"
    overlay = overlay_figure({"a": HISTORY}, columns=1)
    assert panels(overlay)["train loss (running)"][0] > panels(overlay)["validation accuracy"][0]


STATS = [{"event": "step", "step": s, "train_loss": 1.0, "train_acc": 0.5, "lr": 0.01,
          "grad_norms": {"conv1": 0.01 * s, "fc1": 0.2}, "weight_norms": {"conv1": 2.0, "fc1": 5.0},
          "weight_hist": {"conv1": {"lo": -0.5, "hi": 0.5, "counts": [s, 1, 2, 3]}}} for s in (10, 20)]


def test_a_change_by_hand_is_a_mark_on_the_loss_accuracy_and_lr_charts():
    control = {"event": "control", "epoch": 1, "step": 60, "time": 1.0, "action": "set", "lr": 0.1, "momentum": None,
               "paused": False}
    pause = {**control, "step": 61, "action": "pause", "paused": True}
    fig = curves_figure(HISTORY + [control, pause])
    assert [shape.x0 for shape in fig.layout.shapes] == [60, 60, 60]  # the pause is no mark
    assert "lr 0.1" in [a.text for a in fig.layout.annotations]
    assert not curves_figure(HISTORY).layout.shapes


def test_layers_figure_draws_each_layers_norms_on_log_scales():
    fig = layers_figure(HISTORY + STATS)
    grads = [t for t in fig.data if t.xaxis == "x"]
    assert [t.name for t in grads] == ["conv1", "fc1"] and list(grads[0].y) == [0.1, 0.2]
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert not layers_figure(HISTORY).data  # a run recorded before the statistics: nothing to draw


def test_weight_histogram_overlays_the_first_and_the_last_report():
    fig = weight_hist_figure(STATS, "conv1")
    assert [list(t.y) for t in fig.data] == [[10, 1, 2, 3], [20, 1, 2, 3]]
    assert list(fig.data[0].x) == [-0.375, -0.125, 0.125, 0.375]
