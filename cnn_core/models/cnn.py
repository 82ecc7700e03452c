"""Small CNNs from the tutorials: dropout CNN and the 4-conv BatchNorm CNN."""

from torch import nn

from cnn_core.models.registry import Net, register


@register("CNN conv 20@5, conv 50@5, FC 800-500 with dropout", "PyTorch examples-style dropout CNN")
def cnn_dropout(dropout: float = 0.5) -> Net:
    return Net([
        ("conv1", nn.Conv2d(1, 20, 5)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(20, 50, 5)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(800, 500)), ("act3", nn.ReLU()), ("drop1", nn.Dropout(dropout)),
        ("fc2", nn.Linear(500, 10)),
    ])


def _conv_bn(i: int, c_in: int, c_out: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1)), (f"bn{i}", nn.BatchNorm2d(c_out)),
            (f"act{i}", nn.ReLU())]


@register("4 convs 5-10-20-40 @3 with BatchNorm, classifier 1960-200-500-10 with dropout", "BatchNorm CNN tutorial (~99%)")
def bn_cnn4(dropout: float = 0.3) -> Net:
    return Net([
        *_conv_bn(1, 1, 5), *_conv_bn(2, 5, 10), ("pool1", nn.MaxPool2d(2)),
        *_conv_bn(3, 10, 20), *_conv_bn(4, 20, 40), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(1960, 200)), ("act5", nn.ReLU()), ("drop1", nn.Dropout(dropout)),
        ("fc2", nn.Linear(200, 500)), ("act6", nn.ReLU()), ("drop2", nn.Dropout(dropout)),
        ("fc3", nn.Linear(500, 10)),
    ])
