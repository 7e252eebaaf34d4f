"""What a model costs: its weights (masks and step counters are not weights), the weights a
pruned one keeps, and multiply-accumulates per inference."""

from __future__ import annotations

import keras
import numpy as np

from keras_gcnprune.layers import MaskedLayer


def _positions(tensor_shape) -> int:
    """Output positions of a per-sample tensor: everything but the batch and channel axes."""
    return int(np.prod([d for d in tensor_shape[1:-1]], dtype=np.int64))


def _leaf_layers(model: keras.Model) -> list:
    """The layers of `model`, nested models replaced by their own layers."""
    return [leaf for layer in model.layers
            for leaf in (_leaf_layers(layer) if isinstance(layer, keras.Model) else [layer])]


def model_costs(model: keras.Model) -> dict:
    """Weights and multiply-accumulates per inference of one sample, all and kept.

    Masked kernels count every entry in `parameters`/`macs` and only unmasked ones in
    `kept_parameters`/`kept_macs` (what sparse hardware would do); a kernel's MACs are its
    entries times the positions (frames x joints) of the layer's output, plus the layer's own
    `MaskedLayer.aggregation_macs()` per position (graph layers' joint aggregation, V x V per
    channel and subset or head). Masks and pruning steps are not parameters.

    Args:
        model: A built Keras model (nested models are counted layer by layer).

    Returns:
        `{"parameters", "kept_parameters", "macs", "kept_macs"}`.
    """
    layers = _leaf_layers(model)
    masks = {id(w.mask) for layer in layers if isinstance(layer, MaskedLayer)
             for w in layer.masked_weights()}
    costs = dict(parameters=0, kept_parameters=0, macs=0, kept_macs=0)
    for layer in layers:
        variables = [w for w in layer.weights if w.trainable or
                     isinstance(layer, keras.layers.BatchNormalization)]
        variables = [w for w in variables if id(w) not in masks and "pruning_step" not in w.path]
        size = sum(int(np.prod(w.shape)) for w in variables)
        costs["parameters"] += size
        if not isinstance(layer, MaskedLayer):
            costs["kept_parameters"] += size
            continue
        positions = _positions(layer.output.shape)
        costs["kept_parameters"] += size
        for weight in layer.masked_weights():
            entries, kept = int(np.prod(weight.mask.shape)), int(weight.mask.numpy().sum())
            costs["kept_parameters"] -= entries - kept
            if weight.role == "channels":
                costs["macs"] += entries * positions
                costs["kept_macs"] += kept * positions
        aggregation = layer.aggregation_macs() * positions
        costs["macs"] += aggregation
        costs["kept_macs"] += aggregation
    return costs
