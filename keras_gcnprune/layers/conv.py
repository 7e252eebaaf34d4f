"""Masked 1-D and 2-D convolutions, the prunable form of `keras.layers.Conv1D` and `Conv2D`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gcnprune.layers.masked import MaskedLayer
from keras_gcnprune.layers.shadow import batch_of_one, batch_shape, conv2d_strides, sample_of

PADDINGS = ("valid", "same")


def per_axis(value, rank: int) -> tuple[int, ...]:
    """An int, or one per axis, as one int per each of `rank` axes."""
    return (int(value),) * rank if isinstance(value, int) else tuple(map(int, value))


class MaskedConv(MaskedLayer):
    """Base of `MaskedConv1D` and `MaskedConv2D`: a convolution whose kernel
    `(*kernel_size, C_in, filters)` carries a mask, channels last.

    Args:
        filters: Number of output channels.
        kernel_size: Kernel extent, an int or one per spatial axis.
        strides: Stride, an int or one per spatial axis.
        padding: `"valid"` or `"same"`.
        activation: Activation applied to the output (name or callable).
        use_bias: Add a bias per output channel.
        bias_initializer: Initializer of the bias.
        strip_to_stock: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer`.
    """

    rank = 0  # spatial axes: 1 or 2

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 activation=None, use_bias: bool = True, bias_initializer="zeros",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = self._per_axis(kernel_size, "kernel_size")
        self.strides = self._per_axis(strides, "strides")
        if self.filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters}.")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _per_axis(self, value, name: str) -> tuple[int, ...]:
        values = per_axis(value, self.rank)
        if len(values) != self.rank or min(values) < 1:
            raise ValueError(f"{name} must be a positive int or {self.rank} positive ints, got "
                             f"{value!r}.")
        return values

    def build(self, input_shape) -> None:
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{self.name} expects inputs of rank {self.rank + 2} (batch, "
                             f"{self.rank} spatial axes, channels), got {tuple(input_shape)}.")
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (*self.kernel_size, input_shape[-1], self.filters), in_axis=self.rank,
            out_axes=(self.rank + 1,))
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias else None
        )

    def call(self, inputs, training=None):
        outputs = ops.conv(inputs, self.masked(self.kernel, self.kernel_mask, training),
                           strides=self.strides, padding=self.padding)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        spatial = [
            None if size is None else
            (-(-size // stride) if self.padding == "same" else (size - kernel) // stride + 1)
            for size, kernel, stride in zip(input_shape[1:-1], self.kernel_size, self.strides)
        ]
        return (input_shape[0], *spatial, self.filters)

    # The shadow rules run as 2-D convolutions of a batch of one (`batch_of_one`): the forward
    # is the layer's convolution with the mask as kernel, the backward and the used entries
    # that convolution's input and kernel gradients.
    def _conv_options(self) -> dict:
        return {"strides": conv2d_strides(self.strides), "padding": self.padding.upper()}

    def _mask(self, shadow):
        mask = shadow.mask(self.masked_weights()[0])
        return mask if self.rank == 2 else mask[None]

    def shadow_forward(self, inputs, shadow):
        forward = tf.nn.conv2d(batch_of_one(inputs[0], self.rank), self._mask(shadow),
                               **self._conv_options())
        return sample_of(forward, self.rank, shadow)

    def shadow_backward(self, out_co, in_shapes, shadow):
        back = tf.nn.conv2d_transpose(batch_of_one(out_co, self.rank), self._mask(shadow),
                                      batch_shape(in_shapes[0], self.rank),
                                      **self._conv_options())
        return [sample_of(back, self.rank, shadow)]

    def shadow_used(self, acc_in, co_out, shadow):
        mask = self._mask(shadow)
        used = tf.compat.v1.nn.conv2d_backprop_filter(
            batch_of_one(acc_in, self.rank), tuple(mask.shape), batch_of_one(co_out, self.rank),
            **self._conv_options())
        return {self.kernel_mask.path: shadow.array(used if self.rank == 2 else used[0])}

    def narrowed_config(self, keep_out):
        return {**self.get_config(), "filters": len(keep_out)}

    @classmethod
    def stock_options(cls, config: dict) -> dict:
        cls._check_stock_config(config)
        return {key: config[key] for key in (
            "filters", "kernel_size", "strides", "padding", "activation", "use_bias",
            "kernel_initializer", "bias_initializer", "kernel_regularizer")}

    @classmethod
    def _check_stock_config(cls, config: dict) -> None:
        unsupported = {
            "data_format": (config.get("data_format"), "channels_last"),
            "dilation_rate": (per_axis(config.get("dilation_rate", 1), cls.rank),
                              (1,) * cls.rank),
            "groups": (config.get("groups", 1), 1),
        }
        for option, (value, supported) in unsupported.items():
            if value != supported:
                raise ValueError(f"{config['name']!r}: {option}={value!r} is not supported by "
                                 f"{cls.__name__}; use {option}={supported!r}.")
        if config.get("padding") not in PADDINGS:
            raise ValueError(f"{config['name']!r}: padding={config.get('padding')!r} is not "
                             f"supported by {cls.__name__}; use one of {PADDINGS}.")

    def stock_config(self) -> dict:
        config = self.get_config()
        return {key: config[key] for key in (
            "name", "dtype", "trainable", "filters", "kernel_size", "strides", "padding",
            "activation", "use_bias", "kernel_initializer", "bias_initializer",
            "kernel_regularizer")}

    def _width_config(self) -> dict:
        return {"filters": self.filters}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            **self._width_config(),
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            activation=keras.activations.serialize(self.activation),
            use_bias=self.use_bias,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MaskedConv1D(MaskedConv):
    """`keras.layers.Conv1D` with a masked kernel `(k, C_in, filters)`; inputs `(N, T, C)`.

    Args: see `MaskedConv`.

    Example:
        >>> tuple(MaskedConv1D(4, 3, padding="same")(np.zeros((2, 10, 3), "float32")).shape)
        (2, 10, 4)
    """

    rank = 1
    stock_class = keras.layers.Conv1D


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MaskedConv2D(MaskedConv):
    """`keras.layers.Conv2D` with a masked kernel `(kh, kw, C_in, filters)`; inputs
    `(N, H, W, C)`.

    Args: see `MaskedConv`.

    Example:
        >>> tuple(MaskedConv2D(4, 3, strides=2)(np.zeros((2, 9, 9, 3), "float32")).shape)
        (2, 4, 4, 4)
    """

    rank = 2
    stock_class = keras.layers.Conv2D


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MaskedDepthwiseConv2D(MaskedConv):
    """`keras.layers.DepthwiseConv2D` with a masked kernel `(kh, kw, C_in, depth_multiplier)`:
    output channel `c * depth_multiplier + k` reads input channel `c` alone.

    Args:
        kernel_size: Kernel extent, an int or two.
        strides: Stride, an int or two.
        padding: `"valid"` or `"same"`.
        depth_multiplier: Output channels per input channel.
        activation: Activation applied to the output (name or callable).
        use_bias: Add a bias per output channel.
        bias_initializer: Initializer of the bias.
        **kwargs: Passed to `MaskedLayer` (`kernel_initializer` is the depthwise kernel's).

    Example:
        >>> layer = MaskedDepthwiseConv2D(3, depth_multiplier=2)
        >>> tuple(layer(np.zeros((1, 6, 6, 4), "float32")).shape)
        (1, 4, 4, 8)
    """

    rank = 2
    stock_class = keras.layers.DepthwiseConv2D

    def __init__(self, kernel_size, strides=1, padding: str = "valid",
                 depth_multiplier: int = 1, **kwargs) -> None:
        # The output width is the input's times depth_multiplier: there is no `filters`.
        super().__init__(1, kernel_size, strides, padding, **kwargs)
        self.depth_multiplier = int(depth_multiplier)
        if self.depth_multiplier < 1:
            raise ValueError(f"depth_multiplier must be a positive integer, got "
                             f"{depth_multiplier}.")

    def build(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{self.name} expects inputs (N, H, W, C), got "
                             f"{tuple(input_shape)}.")
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (*self.kernel_size, input_shape[-1], self.depth_multiplier), in_axis=2,
            out_axes=(2, 3))
        self.bias = (
            self.add_weight(name="bias", shape=(input_shape[-1] * self.depth_multiplier,),
                            initializer=self.bias_initializer)
            if self.use_bias else None
        )

    def call(self, inputs, training=None):
        outputs = ops.depthwise_conv(inputs, self.masked(self.kernel, self.kernel_mask, training),
                                     strides=self.strides, padding=self.padding)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        return (*shape[:-1], input_shape[-1] * self.depth_multiplier)

    def channel_coupling(self) -> str:
        return "same" if self.depth_multiplier == 1 else "fixed"

    # The shadow rules are those of a full convolution whose kernel is the depthwise one set on
    # the diagonal of the channel pairs (`diagonal_kernel`).
    def _mask(self, shadow):
        return shadow.once(self.name, lambda: diagonal_kernel(
            shadow.mask(self.masked_weights()[0]), shadow.xp))

    def shadow_used(self, acc_in, co_out, shadow):
        full = super().shadow_used(acc_in, co_out, shadow)[self.kernel_mask.path]
        return {self.kernel_mask.path: diagonal_blocks(full, self.depth_multiplier, shadow.xp)}

    def narrowed_config(self, keep_out):
        return self.get_config()  # its width follows its input's

    @classmethod
    def stock_options(cls, config: dict) -> dict:
        cls._check_stock_config(config)
        return {key: config[key] for key in (
            "kernel_size", "strides", "padding", "depth_multiplier", "activation", "use_bias",
            "bias_initializer")} | {"kernel_initializer": config["depthwise_initializer"],
                                   "kernel_regularizer": config["depthwise_regularizer"]}

    def stock_config(self) -> dict:
        config = self.get_config()
        return {key: config[key] for key in (
            "name", "dtype", "trainable", "kernel_size", "strides", "padding",
            "depth_multiplier", "activation", "use_bias", "bias_initializer")} | {
            "depthwise_initializer": config["kernel_initializer"],
            "depthwise_regularizer": config["kernel_regularizer"]}

    def _width_config(self) -> dict:
        return {"depth_multiplier": self.depth_multiplier}


def diagonal_kernel(depthwise, xp):
    """A depthwise kernel `(kh, kw, C, m)` as the full convolution kernel `(kh, kw, C, C * m)`
    that computes the same: zero between different channels."""
    kh, kw, channels, multiplier = depthwise.shape
    diagonal = xp.einsum("hwck,cd->hwcdk", depthwise, xp.eye(channels, dtype="float32"))
    return xp.reshape(diagonal, (kh, kw, channels, channels * multiplier))


def diagonal_blocks(full, multiplier: int, xp):
    """The depthwise entries `(kh, kw, C, m)` of a full kernel-shaped array
    `(kh, kw, C, C * m)`."""
    kh, kw, channels = full.shape[:3]
    return xp.einsum("hwcck->hwck", xp.reshape(full, (kh, kw, channels, channels, multiplier)))


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class MaskedSeparableConv2D(MaskedConv):
    """`keras.layers.SeparableConv2D` with both kernels masked: a depthwise kernel
    `(kh, kw, C_in, depth_multiplier)` (strided, padded), then a pointwise kernel
    `(1, 1, C_in * depth_multiplier, filters)`.

    Args:
        filters: Number of output channels.
        kernel_size: Depthwise kernel extent, an int or two.
        strides: Stride of the depthwise step, an int or two.
        padding: `"valid"` or `"same"`.
        depth_multiplier: Depthwise output channels per input channel.
        pointwise_initializer: Initializer of the pointwise kernel (`kernel_initializer` is
            the depthwise kernel's).
        pointwise_regularizer: Regularizer of the pointwise kernel.
        **kwargs: Passed to `MaskedConv`.

    Example:
        >>> tuple(MaskedSeparableConv2D(5, 3)(np.zeros((1, 6, 6, 4), "float32")).shape)
        (1, 4, 4, 5)
    """

    rank = 2
    stock_class = keras.layers.SeparableConv2D

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
                 depth_multiplier: int = 1, pointwise_initializer="glorot_uniform",
                 pointwise_regularizer=None, **kwargs) -> None:
        super().__init__(filters, kernel_size, strides, padding, **kwargs)
        self.depth_multiplier = int(depth_multiplier)
        if self.depth_multiplier < 1:
            raise ValueError(f"depth_multiplier must be a positive integer, got "
                             f"{depth_multiplier}.")
        self.pointwise_initializer = keras.initializers.get(pointwise_initializer)
        self.pointwise_regularizer = keras.regularizers.get(pointwise_regularizer)

    def build(self, input_shape) -> None:
        if len(input_shape) != 4:
            raise ValueError(f"{self.name} expects inputs (N, H, W, C), got "
                             f"{tuple(input_shape)}.")
        middle = input_shape[-1] * self.depth_multiplier
        self.depthwise_kernel, self.depthwise_kernel_mask = self.add_masked_weight(
            "depthwise_kernel", (*self.kernel_size, input_shape[-1], self.depth_multiplier),
            in_axis=2, out_axes=(2, 3))
        self.pointwise_kernel, self.pointwise_kernel_mask = self.add_masked_weight(
            "pointwise_kernel", (1, 1, middle, self.filters),
            initializer=self.pointwise_initializer, regularize=False, in_axis=2, out_axes=(3,))
        self.pointwise_kernel.regularizer = self.pointwise_regularizer  # in layer.losses
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias else None
        )

    def call(self, inputs, training=None):
        depthwise = self.masked(self.depthwise_kernel, self.depthwise_kernel_mask, training)
        pointwise = self.masked(self.pointwise_kernel, self.pointwise_kernel_mask, training)
        outputs = ops.separable_conv(inputs, depthwise, pointwise, strides=self.strides,
                                     padding=self.padding)
        if self.bias is not None:
            outputs = outputs + self.bias
        return self.activation(outputs)

    def output_kernels(self) -> list:
        return [self.masked_weights()[1]]

    # The depthwise step runs as a full convolution with its kernel on the channel diagonal,
    # the pointwise step as a 1x1 convolution; the shadow between them is stepped, as after a
    # layer. The diagonal kernel and the two middle shadows are computed once per propagation:
    # the used entries take the middles that the forward and backward rules made (a layer's
    # forward input is its used rule's `acc_in`, its backward input the used rule's `co_out`).
    def _depthwise(self, shadow):
        return shadow.once(f"{self.name}/depthwise", lambda: diagonal_kernel(
            shadow.mask(self.masked_weights()[0]), shadow.xp))

    def _pointwise(self, shadow):
        return shadow.mask(self.masked_weights()[1])

    def _pointwise_options(self) -> dict:
        return {"strides": [1, 1, 1, 1], "padding": "VALID"}

    def _middle(self, acc_in, shadow):
        return shadow.once(f"{self.name}/middle", lambda: shadow.algebra.step(tf.nn.conv2d(
            acc_in[None], self._depthwise(shadow), **self._conv_options())))

    def _middle_co(self, co_out, shadow):
        pointwise = self._pointwise(shadow)
        return shadow.once(f"{self.name}/middle_co", lambda: shadow.algebra.step(
            tf.nn.conv2d_transpose(co_out[None], pointwise,
                                   (1, *co_out.shape[:2], pointwise.shape[2]),
                                   **self._pointwise_options())))

    def shadow_forward(self, inputs, shadow):
        out = tf.nn.conv2d(self._middle(inputs[0], shadow), self._pointwise(shadow),
                           **self._pointwise_options())
        return sample_of(out, self.rank, shadow)

    def shadow_backward(self, out_co, in_shapes, shadow):
        back = tf.nn.conv2d_transpose(self._middle_co(out_co, shadow), self._depthwise(shadow),
                                      (1, *in_shapes[0]), **self._conv_options())
        return [sample_of(back, self.rank, shadow)]

    def shadow_used(self, acc_in, co_out, shadow):
        depthwise, pointwise = self.masked_weights()
        full = tf.compat.v1.nn.conv2d_backprop_filter(
            acc_in[None], tuple(self._depthwise(shadow).shape), self._middle_co(co_out, shadow),
            **self._conv_options())
        used_pointwise = tf.compat.v1.nn.conv2d_backprop_filter(
            self._middle(acc_in, shadow), tuple(pointwise.mask.shape), co_out[None],
            **self._pointwise_options())
        used = {depthwise.mask.path: diagonal_blocks(full, self.depth_multiplier, tf),
                pointwise.mask.path: used_pointwise}
        return {path: shadow.array(value) for path, value in used.items()}

    def sliced_weights(self, keep_in, keep_out):
        """Kept input channels of the depthwise kernel, their depthwise outputs' rows and the
        kept output columns of the pointwise kernel, the bias of the kept outputs."""
        middle = (keep_in[:, None] * self.depth_multiplier
                  + np.arange(self.depth_multiplier)).ravel()
        parts = {id(self.depthwise_kernel): lambda v: v[:, :, keep_in],
                 id(self.depthwise_kernel_mask): lambda v: v[:, :, keep_in],
                 id(self.pointwise_kernel): lambda v: v[:, :, middle][..., keep_out],
                 id(self.pointwise_kernel_mask): lambda v: v[:, :, middle][..., keep_out]}
        if self.bias is not None:
            parts[id(self.bias)] = lambda v: v[keep_out]
        return [parts.get(id(variable), lambda v: v)(ops.convert_to_numpy(variable))
                for variable in self.weights]

    def stock_kernels(self) -> dict:
        depthwise, pointwise = self.masked_weights()
        return {"depthwise_kernel": depthwise, "pointwise_kernel": pointwise}

    @classmethod
    def stock_options(cls, config: dict) -> dict:
        cls._check_stock_config(config)
        return {key: config[key] for key in (
            "filters", "kernel_size", "strides", "padding", "depth_multiplier", "activation",
            "use_bias", "bias_initializer", "pointwise_initializer",
            "pointwise_regularizer")} | {
            "kernel_initializer": config["depthwise_initializer"],
            "kernel_regularizer": config["depthwise_regularizer"]}

    def stock_config(self) -> dict:
        config = self.get_config()
        return {key: config[key] for key in (
            "name", "dtype", "trainable", "filters", "kernel_size", "strides", "padding",
            "depth_multiplier", "activation", "use_bias", "bias_initializer",
            "pointwise_initializer", "pointwise_regularizer")} | {
            "depthwise_initializer": config["kernel_initializer"],
            "depthwise_regularizer": config["kernel_regularizer"]}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            depth_multiplier=self.depth_multiplier,
            pointwise_initializer=keras.initializers.serialize(self.pointwise_initializer),
            pointwise_regularizer=keras.regularizers.serialize(self.pointwise_regularizer),
        )
        return config
