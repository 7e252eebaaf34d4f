"""Masked temporal convolution: a (k, 1) convolution along the frame axis."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
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
        >>> tuple(layer(np.zeros((2, 10, 15, 8), "float32")).shape)
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

    # In the SOFT algebra (the graph of every training step) a temporal rule is one convolution
    # of the shadow: the forward is the layer's own convolution with the mask as kernel, the
    # backward and the used entries are that convolution's input and kernel gradients. In numpy
    # (EXACT), and for dilated layers (TensorFlow's CPU kernels have no dilated convolution
    # gradients), each of the k taps moves frames with a selection matrix.
    def _as_convolution(self, shadow) -> bool:
        return not shadow.exact and self.dilation_rate == 1

    def _conv_options(self) -> dict:
        return {"strides": [1, self.strides, 1, 1], "padding": "SAME",
                "dilations": [1, self.dilation_rate, 1, 1]}

    def _selections(self, frames_in: int):
        """Yields (tap, S) of the 'same' convolution: S[t_out, t_in] = 1 where the tap reads
        t_in."""
        stride, dilation, size = self.strides, self.dilation_rate, self.kernel_size
        frames_out = -(-frames_in // stride)
        pad = max((frames_out - 1) * stride + (size - 1) * dilation + 1 - frames_in, 0) // 2
        for tap in range(size):
            source = np.arange(frames_out) * stride + tap * dilation - pad
            valid = (source >= 0) & (source < frames_in)
            select = np.zeros((frames_out, frames_in), np.float32)
            select[np.arange(frames_out)[valid], source[valid]] = 1.0
            yield tap, select

    def shadow_forward(self, inputs, shadow):
        xp, mask = shadow.xp, shadow.mask(self.masked_weights()[0])
        if self._as_convolution(shadow):
            if self.kernel_size == 1:  # as the layer does: strided 1x1 convolutions are unsafe
                return xp.matmul(inputs[0][::self.strides], mask[0, 0])
            return tf.nn.conv2d(inputs[0][None], mask, **self._conv_options())[0]
        return sum(
            _over_frames(select, xp.matmul(inputs[0], mask[tap, 0]), xp)
            for tap, select in self._selections(inputs[0].shape[0])
        )

    def shadow_backward(self, out_co, in_shapes, shadow):
        xp, mask = shadow.xp, shadow.mask(self.masked_weights()[0])
        if self._as_convolution(shadow):
            if self.kernel_size == 1:
                back = xp.matmul(out_co, xp.transpose(mask[0, 0]))
                return [_spread_frames(back, self.strides, in_shapes[0][0])]
            return [tf.nn.conv2d_transpose(out_co[None], mask,
                                           (1, *in_shapes[0][:2], mask.shape[2]),
                                           **self._conv_options())[0]]
        return [sum(
            xp.matmul(_over_frames(select.T, out_co, xp), xp.transpose(mask[tap, 0]))
            for tap, select in self._selections(in_shapes[0][0])
        )]

    def shadow_used(self, acc_in, co_out, shadow):
        xp, path = shadow.xp, self.kernel_mask.path
        if self._as_convolution(shadow):
            if self.kernel_size == 1:
                taps = xp.matmul(xp.transpose(xp.reshape(acc_in[::self.strides],
                                                         (-1, acc_in.shape[-1]))),
                                 xp.reshape(co_out, (-1, co_out.shape[-1])))
                return {path: taps[None, None]}
            return {path: tf.compat.v1.nn.conv2d_backprop_filter(
                acc_in[None], tuple(self.kernel_mask.shape), co_out[None],
                **self._conv_options())}
        co = xp.reshape(co_out, (-1, co_out.shape[-1]))
        taps = [
            xp.matmul(xp.transpose(xp.reshape(_over_frames(select, acc_in, xp),
                                              (-1, acc_in.shape[-1]))), co)
            for _, select in self._selections(acc_in.shape[0])
        ]
        return {path: xp.expand_dims(xp.stack(taps), 1)}

    def narrowed_config(self, keep_out):
        return {**self.get_config(), "filters": len(keep_out)}

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


def _over_frames(select, tensor, xp):
    """Applies a (T_out, T_in) frame matrix to a (T_in, V, C) tensor."""
    moved = xp.matmul(select, xp.reshape(tensor, (tensor.shape[0], -1)))
    return xp.reshape(moved, (select.shape[0], *tuple(tensor.shape[1:])))


def _spread_frames(x, stride: int, frames: int):
    """(T_out, V, C) placed at every `stride`-th of `frames` frames, zeros between."""
    if stride == 1:
        return x
    zeros = ops.zeros((x.shape[0], stride - 1, *x.shape[1:]), x.dtype)
    spread = ops.reshape(ops.concatenate([x[:, None], zeros], axis=1), (-1, *x.shape[1:]))
    return spread[:frames]
