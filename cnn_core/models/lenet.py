"""The LeNet-5 family: LeCun's 1998 original and the variants the tutorials train."""

from torch import nn

from cnn_core.models.registry import Net, register


def _classifier(act: type[nn.Module]) -> list[tuple[str, nn.Module]]:
    """flatten → 400-120-84-10 with `act` between the linear layers."""
    return [
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 120)), ("act3", act()),
        ("fc2", nn.Linear(120, 84)), ("act4", act()),
        ("fc3", nn.Linear(84, 10)),
    ]


@register("LeNet-5 as in LeCun 1998: tanh, average pooling, 32x32 input", "LeCun et al. 1998")
def lenet5_classic() -> Net:
    return Net([
        ("conv1", nn.Conv2d(1, 6, 5)), ("act1", nn.Tanh()), ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("act2", nn.Tanh()), ("pool2", nn.AvgPool2d(2)),
        *_classifier(nn.Tanh),
    ], input_size=32)


@register("LeNet-5 with BatchNorm, ReLU and max-pooling, 32x32 input", "LeNet-5 + BatchNorm tutorial")
def lenet5_bn() -> Net:
    return Net([
        ("conv1", nn.Conv2d(1, 6, 5)), ("bn1", nn.BatchNorm2d(6)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("bn2", nn.BatchNorm2d(16)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        *_classifier(nn.ReLU),
    ], input_size=32)


@register("LeNet with conv 6@5, conv 16@3, average pooling and ReLU, 28x28 input", "LeNet average-pooling tutorial")
def lenet_avgpool() -> Net:
    return Net([
        ("conv1", nn.Conv2d(1, 6, 5)), ("act1", nn.ReLU()), ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 3)), ("act2", nn.ReLU()), ("pool2", nn.AvgPool2d(2)),
        *_classifier(nn.ReLU),
    ])


@register("LeNet-5 with ReLU and max-pooling on a padded 28x28 input", "modern LeNet-5 tutorial")
def lenet_modern() -> Net:
    return Net([
        ("conv1", nn.Conv2d(1, 6, 5, padding=2)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("act2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        *_classifier(nn.ReLU),
    ])


@register("LeNet of the course notebook: conv 6@5 pad 2, max pool, conv 16@5, avg pool, FC 400-84-10, 28x28 input",
          "course notebook (PyTorch nn.Sequential)")
def lenet_notebook(softmax: bool = False) -> Net:
    """As the notebook writes it: no 120-unit layer, no BatchNorm, the second pool an average; `softmax` ends it
    in nn.Softmax as the notebook does."""
    return Net([
        ("conv1", nn.Conv2d(1, 6, 5, padding=2)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(6, 16, 5)), ("act2", nn.ReLU()), ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(400, 84)), ("act3", nn.ReLU()),
        ("fc2", nn.Linear(84, 10)),
        *([("softmax", nn.Softmax(dim=1))] if softmax else []),
    ])
