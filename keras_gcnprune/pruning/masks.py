"""The prunable weights of a model and magnitude-based mask selection."""

from __future__ import annotations

import keras
import numpy as np

from keras_gcnprune.layers import MaskedLayer, MaskedWeight


def prunable_weights(model: keras.Model, include_adjacency: bool = True) -> list[MaskedWeight]:
    """Returns the masked weights of every `MaskedLayer` in `model`, in layer order.

    Args:
        model: A built Keras model.
        include_adjacency: Also return the learned joint-to-joint weights (role
            `"adjacency"`: the per-head adjacencies of `GraphAttention`, the learned offsets
            of `GraphConv`), which every pruning method prunes by default; False: the channel
            kernels only.
    """
    weights = [
        weight
        for layer in masked_layers(model)
        for weight in layer.masked_weights()
        if include_adjacency or weight.role == "channels"
    ]
    if not weights:
        raise ValueError(
            f"Model {model.name!r} has no prunable weights: build it from keras_gcnprune.layers "
            "(GraphConv, GraphAttention, TemporalConv, MaskedDense, ...), or make a model of "
            "stock layers prunable with keras_gcnprune.pruning.prune_low_magnitude(model)."
        )
    return weights


def cloned_pairs(model: keras.Model, clone: keras.Model) -> list[tuple]:
    """`(layer, its clone)` of every layer of `model` but its inputs, nested models replaced by
    their own layers, matched by name (as `keras.models.clone_model` keeps them)."""
    pairs = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        twin = clone.get_layer(layer.name)
        pairs += cloned_pairs(layer, twin) if isinstance(layer, keras.Model) else [(layer, twin)]
    return pairs


def masked_layers(model: keras.Model) -> list[MaskedLayer]:
    """Returns the `MaskedLayer`s of `model`, nested models included, in layer order."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += masked_layers(layer)
        elif isinstance(layer, MaskedLayer):
            found.append(layer)
    return found


def assign_masks(model: keras.Model, masks: dict[str, np.ndarray]) -> None:
    """Sets the masks of `model`'s masked weights from a dict by mask path (others unchanged)."""
    for weight in prunable_weights(model):
        if weight.mask.path in masks:
            weight.mask.assign(masks[weight.mask.path])


def rms_normalised(values: np.ndarray) -> np.ndarray:
    """`values` divided by their root mean square, so that one global threshold can compare
    kernels of different scales (unchanged when all are zero)."""
    rms = float(np.sqrt(np.mean(np.square(values))))
    return values / rms if rms > 0 else values


def magnitude_mask(values: np.ndarray, rate: float) -> np.ndarray:
    """Keeps the largest-magnitude entries so that a fraction `rate` is removed.

    The Model Optimization Toolkit's rule: `k = max(round(size * (1 - rate)), 1)` entries,
    threshold at the k-th largest magnitude, every entry at least as large kept (ties included).

    Returns:
        A float32 0/1 array shaped like `values`.
    """
    magnitudes = np.abs(np.asarray(values, dtype=np.float32)).ravel()
    keep = max(int(np.round(np.float32(magnitudes.size) * np.float32(1.0 - rate))), 1)
    order = np.argsort(-magnitudes, kind="stable")
    threshold = magnitudes[order[keep - 1]]
    mask = magnitudes >= threshold
    mask[order[keep - 1]] = True
    return mask.reshape(np.shape(values)).astype(np.float32)


def global_magnitude_masks(values: list[np.ndarray], rate: float) -> list[np.ndarray]:
    """`magnitude_mask` with one threshold shared by all arrays (global ranking)."""
    return split_like(magnitude_mask(np.concatenate([np.ravel(v) for v in values]), rate),
                      values)


def split_like(flat: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Cuts a flat array into pieces shaped like `arrays`, in order (the inverse of
    concatenating their ravels)."""
    sizes = np.cumsum([0] + [np.size(a) for a in arrays])
    return [flat[sizes[i]:sizes[i + 1]].reshape(np.shape(a)) for i, a in enumerate(arrays)]


def prunable_entries(model: keras.Model, include_adjacency: bool = True) -> int:
    """The number of entries of `model`'s prunable weights (see `prunable_weights`)."""
    return sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(model, include_adjacency))


def kept_count(entries: int, rate: float) -> int:
    """Entries kept when a fraction `rate` of `entries` is removed: rounded, at least one."""
    return max(int(round(entries * (1.0 - rate))), 1)


def effective_values(weight: MaskedWeight) -> np.ndarray:
    """The weights the forward pass uses: latent kernel times mask."""
    return weight.kernel.numpy() * weight.mask.numpy()


def realized_rate(weights: list[MaskedWeight]) -> float:
    """Fraction of masked-out entries over all `weights`."""
    total = sum(int(np.prod(w.mask.shape)) for w in weights)
    kept = sum(float(np.sum(w.mask.numpy())) for w in weights)
    return 1.0 - kept / total
