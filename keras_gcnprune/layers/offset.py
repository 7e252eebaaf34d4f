"""A constant added to a tensor: what compaction folds from removed constant channels."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class ConstantOffset(keras.layers.Layer):
    """Adds a fixed array to its input (broadcast over the batch and any axis of size 1).

    Args:
        offset: Array shaped like one sample of the input, or broadcastable to it (for example
            `(1, V, C)` for a per-joint offset of a `(T, V, C)` sample).
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(self, offset, **kwargs) -> None:
        super().__init__(**kwargs)
        self.offset = np.asarray(offset, dtype=np.float32)

    def call(self, inputs):
        return inputs + ops.convert_to_tensor(self.offset)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(offset=self.offset.tolist())
        return config
