"""The multilayer perceptron baseline."""

from torch import nn

from cnn_core.models.registry import Net, register


@register("MLP 784-128-10 with ReLU: the baseline every CNN should beat", "MLP baseline tutorial")
def mlp(hidden: int = 128, softmax: bool = False) -> Net:
    """`softmax`: end in nn.Softmax as the course notebook does (trained with CrossEntropyLoss, that is
    softmax twice: a flaw its lesson shows)."""
    return Net([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(784, hidden)),
        ("act1", nn.ReLU()),
        ("fc2", nn.Linear(hidden, 10)),
        *([("softmax", nn.Softmax(dim=1))] if softmax else []),
    ])
