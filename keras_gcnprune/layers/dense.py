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
        bias_initializer: Initializer of the bias.
        freeze_pruned: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer`.

    Example:
        >>> tuple(MaskedDense(4)(np.zeros((2, 16), "float32")).shape)
        (2, 4)
    """

    stock_class = keras.layers.Dense

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 bias_initializer="zeros", **kwargs) -> None:
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units}.")
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape) -> None:
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (input_shape[-1], self.units), in_axis=0, out_axes=(1,)
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)
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

    def shadow_forward(self, inputs, shadow):
        return shadow.xp.matmul(inputs[0], shadow.mask(self.masked_weights()[0]))

    def shadow_backward(self, out_co, in_shapes, shadow):
        mask = shadow.mask(self.masked_weights()[0])
        return [shadow.xp.matmul(out_co, shadow.xp.transpose(mask))]

    def shadow_used(self, acc_in, co_out, shadow):
        xp = shadow.xp
        acc = xp.reshape(acc_in, (-1, acc_in.shape[-1]))
        co = xp.reshape(co_out, (-1, co_out.shape[-1]))
        return {self.kernel_mask.path: xp.matmul(xp.transpose(acc), co)}

    def narrowed_config(self, keep_out):
        return {**self.get_config(), "units": len(keep_out)}

    @classmethod
    def stock_options(cls, config: dict) -> dict:
        return {key: config[key] for key in (
            "units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
            "kernel_regularizer")}

    def stock_config(self) -> dict:
        config = self.get_config()
        return {key: config[key] for key in (
            "name", "dtype", "trainable", "units", "activation", "use_bias",
            "kernel_initializer", "bias_initializer", "kernel_regularizer")}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
