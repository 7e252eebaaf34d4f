"""Masked temporal convolution: a (k, 1) convolution along the frame axis."""

from __future__ import annotations

import keras
from keras import ops

from keras_gcnprune.layers.masked import MaskedLayer


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class TemporalConv(MaskedLayer):
    """Convolution over frames, joint by joint, with a masked kernel `(k, 1, C_in, filters)`.

    Args:
        filters: Number of output channels.
        kernel_size: Temporal extent `k` (odd for symmetric "same" padding).
        strides: Temporal stride.
        dilation_rate: Temporal dilation (cannot be combined with a stride above 1).
        use_bias: Add a bias per output channel.
        freeze_pruned: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer`.

    Example:
        >>> layer = TemporalConv(16, kernel_size=5, strides=2)
        >>> layer(np.zeros((2, 10, 15, 8), "float32")).shape
        (2, 5, 15, 16)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 9,
        strides: int = 1,
        dilation_rate: int = 1,
        use_bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if int(filters) < 1 or int(kernel_size) < 1 or int(strides) < 1 or int(dilation_rate) < 1:
            raise ValueError(
                "filters, kernel_size, strides and dilation_rate must be positive, got "
                f"{filters}, {kernel_size}, {strides}, {dilation_rate}."
            )
        if int(strides) > 1 and int(dilation_rate) > 1:
            raise ValueError(
                f"strides={strides} with dilation_rate={dilation_rate}: a temporal convolution "
                "takes either a stride or a dilation above 1, not both."
            )
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.dilation_rate = int(dilation_rate)
        self.use_bias = bool(use_bias)

    def build(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{self.name} expects inputs (N, T, V, C), got {tuple(input_shape)}.")
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (self.kernel_size, 1, input_shape[-1], self.filters), in_axis=2, out_axes=(3,)
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )

    def call(self, inputs, training=None):
        strides = self.strides
        if self.kernel_size == 1 and strides > 1:
            # Same result as a strided 1x1 convolution. TensorFlow 2.21's oneDNN kernel for a
            # strided 1x1 convolution corrupts memory on batches of some sizes (native crash).
            inputs, strides = inputs[:, ::strides], 1
        outputs = ops.conv(
            inputs,
            self.masked(self.kernel, self.kernel_mask, training),
            strides=(strides, 1),
            padding="same",
            dilation_rate=(self.dilation_rate, 1),
        )
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def compute_output_shape(self, input_shape):
        frames = input_shape[1]
        if frames is not None:
            frames = -(-frames // self.strides)
        return (input_shape[0], frames, input_shape[2], self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            use_bias=self.use_bias,
        )
        return config
