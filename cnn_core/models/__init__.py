"""Models: a registry of named factories. Importing this package registers every family."""

from cnn_core.models import mlp, lenet, cnn, custom  # noqa: F401, I001  (registers the models, in this order)
from cnn_core.models.custom import ModelSpecError
from cnn_core.models.registry import (MODELS, Net, count_parameters, create_model, head, layer_table, list_models,
                                      model_spec, num_classes, outputs_probabilities, takes, with_classes)

__all__ = ["MODELS", "ModelSpecError", "Net", "count_parameters", "create_model", "head", "layer_table", "list_models",
           "model_spec", "num_classes", "outputs_probabilities", "takes", "with_classes"]
