"""Masked fully connected layer."""

from __future__ import annotations

import keras
from keras import ops

from keras_gcnprune.layers.masked import MaskedLayer, matmul_last_axis


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MaskedDense(MaskedLayer):
    """A dense layer whose kernel `(C_in, units)` carries a mask.

    Args:
        units: Number of output units.
        activation: Activation applied to the output (name or callable).
        use_bias: Add a bias per unit.
        freeze_pruned: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer`.

    Example:
        >>> MaskedDense(4)(np.zeros((2, 16), "float32")).shape
        (2, 4)
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units}.")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)

    def build(self, input_shape) -> None:
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (input_shape[-1], self.units), in_axis=0, out_axes=(1,)
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
            if self.use_bias
            else None
        )

    def call(self, inputs, training=None):
        outputs = matmul_last_axis(inputs, self.masked(self.kernel, self.kernel_mask, training))
        if len(inputs.shape) != 2:
            outputs = ops.reshape(outputs, (*ops.shape(inputs)[:-1], self.units))
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
        )
        return config
