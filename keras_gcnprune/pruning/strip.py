"""Deployment copies of pruned models."""

from __future__ import annotations

import keras

from keras_gcnprune.pruning.masks import masked_layers, prunable_weights


def strip_pruning(model: keras.Model, masks: dict | None = None) -> keras.Model:
    """Returns a copy of `model` whose kernels hold `kernel * mask`.

    The copy computes the same outputs as the masked model, carries no pruning state (its
    pruning steps are zero; Keras compiles it like the original, with a fresh optimizer), and
    keeps its masks, so that reports and compaction
    still see which weights are pruned. Pruned entries are exactly zero in the kernels, which
    is what exporters and file compression see.

    Args:
        model: A model built from the package's masked layers.
        masks: Masks to use instead of the model's own, by mask path (others unchanged).

    Returns:
        The stripped `keras.Model`.

    Example:
        >>> deployable = strip_pruning(pruned_model)  # doctest: +SKIP
        >>> deployable.save("deploy.keras")  # doctest: +SKIP
    """
    stripped = keras.models.clone_model(model)
    stripped.set_weights(model.get_weights())
    for weight in prunable_weights(stripped):
        if masks is not None and weight.mask.path in masks:
            weight.mask.assign(masks[weight.mask.path])
        weight.kernel.assign(weight.kernel * weight.mask)
    for layer in masked_layers(stripped):
        if hasattr(layer, "pruning_step"):
            layer.pruning_step.assign(0)
    return stripped
