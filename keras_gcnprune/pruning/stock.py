"""What the package knows about stock Keras layers, in one table.

Each stock layer (and the package's weight-free `ConstantOffset`) has a kind that says how it
moves neurons, which the accessibility analysis (`topology`), the channel groups of compaction
(`channels`) and the toolkit's API (`toolkit`) read:

- `identity`: every neuron to itself (normalization, activations, dropout): passes channels.
- `global_pooling`: every position of a channel into that channel: passes channels.
- `window_pooling`: a window of positions of a channel into it: passes channels.
- `add`: inputs merged neuron by neuron: passes channels, and ties the inputs' channels.
- `flatten`: positions and channels into one axis (compaction keeps each position's channels).
- `reshape`, `permute`, `concatenate`: neurons moved across the channel axis: a barrier that
  keeps every channel on both sides.

Any other layer is unsupported by the analysis and named in its error. `UNPRUNED_WEIGHTS` are
the stock layers with weights that a pruned model keeps dense, as the Model Optimization
Toolkit keeps them.
"""

from __future__ import annotations

import keras

from keras_gcnprune.layers import ConstantOffset

STOCK_LAYERS: dict[type, str] = {
    **dict.fromkeys((
        keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.ReLU,
        keras.layers.Activation, keras.layers.Dropout, keras.layers.LeakyReLU,
        keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax,
        keras.layers.SpatialDropout2D, ConstantOffset), "identity"),
    **dict.fromkeys((
        keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D), "global_pooling"),
    **dict.fromkeys((
        keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D,
        keras.layers.AveragePooling2D), "window_pooling"),
    keras.layers.Add: "add",
    keras.layers.Flatten: "flatten",
    keras.layers.Reshape: "reshape",
    keras.layers.Permute: "permute",
    keras.layers.Concatenate: "concatenate",
}
UNPRUNED_WEIGHTS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization,
                    keras.layers.PReLU)
PASSING_KINDS = ("identity", "global_pooling", "window_pooling", "add")
BARRIER_KINDS = ("reshape", "permute", "concatenate")


def stock_kind(layer: keras.layers.Layer) -> str | None:
    """The kind of a stock layer (`STOCK_LAYERS`), None for any other layer."""
    return next((kind for cls, kind in STOCK_LAYERS.items() if isinstance(layer, cls)), None)


def layers_of(*kinds: str) -> tuple[type, ...]:
    """The stock layer classes of these kinds, for `isinstance`.

    Example:
        >>> keras.layers.Add in layers_of("add")
        True
    """
    return tuple(layer for layer, kind in STOCK_LAYERS.items() if kind in kinds)
