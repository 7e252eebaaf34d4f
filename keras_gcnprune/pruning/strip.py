"""Deployment copies of pruned models."""

from __future__ import annotations

import keras

from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.pruning.masks import cloned_pairs


def strip_pruning(model: keras.Model, masks: dict | None = None) -> keras.Model:
    """Returns a copy of `model` whose kernels hold `kernel * mask`.

    The copy computes the same outputs as the masked model and carries no pruning state (its
    pruning steps are zero; Keras compiles it like the original, with a fresh optimizer).
    Layers that `prune_low_magnitude` made from stock layers come back as those stock layers
    (`Dense`, `Conv1D`, `Conv2D`), as the Model Optimization Toolkit's `strip_pruning` gives
    them; the package's own layers stay masked layers and keep their masks, so that reports and
    compaction still see which weights are pruned. Pruned entries are exactly zero in the
    kernels, which is what exporters and file compression see.

    Args:
        model: A model with masked layers.
        masks: Masks to use instead of the model's own, by mask path (others unchanged).

    Returns:
        The stripped `keras.Model`.

    Example:
        >>> deployable = strip_pruning(pruned_model)  # doctest: +SKIP
        >>> deployable.save("deploy.keras")  # doctest: +SKIP
    """
    masks = masks or {}

    def clone_function(layer):
        if isinstance(layer, MaskedLayer) and layer.strip_to_stock:
            return layer.to_stock(masks)
        return layer.__class__.from_config(layer.get_config())

    stripped = keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    _copy_and_bake(model, stripped, masks)
    return stripped


def _copy_and_bake(source: keras.Model, target: keras.Model, masks: dict) -> None:
    for layer, clone in cloned_pairs(source, target):
        if isinstance(layer, MaskedLayer) and layer.strip_to_stock:
            continue  # built with its baked kernel by to_stock
        clone.set_weights(layer.get_weights())
        if isinstance(clone, MaskedLayer):
            for weight in clone.masked_weights():
                if weight.mask.path in masks:
                    weight.mask.assign(masks[weight.mask.path])
                weight.kernel.assign(weight.kernel * weight.mask)
            if hasattr(clone, "pruning_step"):
                clone.pruning_step.assign(0)
