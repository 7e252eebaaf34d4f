"""What every prunable layer shares: a latent kernel, a same-shaped mask, and the constraint.

The forward pass of a prunable layer uses `kernel * mask`. The mask is a non-trainable Keras
variable, so it is saved in `.keras` files, restored by `keras.models.load_model` and mirrored
under a distribution strategy. With `freeze_pruned=True` a constraint multiplies the kernel by the
mask after every optimizer step, so pruned weights stay exactly zero (the Model Optimization
Toolkit's behaviour); without it, the latent weights of pruned connections keep training, which
methods that may revive connections need.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from keras_gcnprune.layers.shadow import Shadow


class MaskConstraint(keras.constraints.Constraint):
    """Zeroes the weights whose mask entry is 0, after every optimizer step.

    It holds its layer's mask variable, so it is not serializable on its own: a layer with
    `freeze_pruned=True` recreates it when it builds, and the mask is restored with the
    layer's weights.

    Args:
        mask: The mask variable, same shape as the constrained kernel.
    """

    def __init__(self, mask: keras.Variable) -> None:
        self.mask = mask

    def __call__(self, weight):
        return weight * ops.cast(self.mask, weight.dtype)

    def get_config(self) -> dict:
        raise TypeError(
            f"MaskConstraint holds the mask variable {self.mask.path!r} and cannot be "
            "serialized on its own; serialize the layer instead, whose freeze_pruned option "
            "recreates it.")


@dataclass(frozen=True)
class MaskedWeight:
    """A prunable kernel of a layer and how its axes map to connections.

    Args:
        kernel: The latent kernel variable.
        mask: Its mask variable (same shape, 0/1 values).
        role: `"channels"` for a kernel that connects input channels to output channels, or
            `"adjacency"` for a learned joint-to-joint matrix (one per head).
        in_axis: Axis of the input channel (`"channels"` only).
        out_axes: Axes whose flattened product is the output channel (`"channels"` only); all
            other axes (taps, subsets) are summed over when forming connections.
    """

    kernel: keras.Variable
    mask: keras.Variable
    role: str = "channels"
    in_axis: int | None = None
    out_axes: tuple[int, ...] = ()

    def connections(self, values: np.ndarray | None = None) -> np.ndarray:
        """Reduces a kernel-shaped array (default: the mask) to a (C_in, C_out) matrix.

        Entries count the kept weights (or sum the values) of each (input, output) channel pair.
        """
        if self.role != "channels":
            raise ValueError(f"{self.kernel.path} is an adjacency, not a channel kernel.")
        array = np.asarray(self.mask.numpy() if values is None else values)
        if self.in_axis in self.out_axes:  # depthwise: input c feeds only its own outputs
            per_output = self._per_output(array)
            inputs = array.shape[self.in_axis]
            matrix = np.zeros((inputs, per_output.size), per_output.dtype)
            outputs = np.arange(per_output.size)
            matrix[outputs // (per_output.size // inputs), outputs] = per_output
            return matrix
        rest = [a for a in range(array.ndim) if a != self.in_axis and a not in self.out_axes]
        array = np.transpose(array, (self.in_axis, *self.out_axes, *rest))
        out_size = int(np.prod([array.shape[1 + i] for i in range(len(self.out_axes))]))
        return array.reshape(array.shape[0], out_size, -1).sum(axis=-1)

    def _per_output(self, array: np.ndarray) -> np.ndarray:
        rest = [a for a in range(array.ndim) if a not in self.out_axes]
        moved = np.transpose(array, (*self.out_axes, *rest))
        out_size = int(np.prod([array.shape[a] for a in self.out_axes]))
        return moved.reshape(out_size, -1).sum(axis=-1)

    def slice_channels(self, value: np.ndarray, keep_in: np.ndarray,
                       keep_out: np.ndarray) -> np.ndarray:
        """A kernel-shaped array (the kernel's or the mask's value) restricted to the kept input
        and output channels; the output axes come out flattened into one. Where the input axis
        is one of the output axes (a depthwise kernel, whose outputs are its inputs'), the kept
        inputs decide."""
        value = np.take(value, keep_in, axis=self.in_axis)
        if self.in_axis in self.out_axes:
            return value
        first, count = self.out_axes[0], len(self.out_axes)
        merged = value.reshape(*value.shape[:first], -1, *value.shape[first + count:])
        return np.take(merged, keep_out, axis=first)


class MaskedLayer(keras.layers.Layer):
    """Base class of the prunable layers: creates masked kernels and lists them.

    A prunable layer type holds everything the package knows about it, its pruning protocol:
    `masked_weights()` (its kernels, their masks and channel axes); the reachability rules
    `shadow_forward`, `shadow_backward` and `shadow_used`, written once for both algebras of
    `keras_gcnprune.layers.shadow`; `output_kernels()` and `channel_coupling()` (which kernels
    write the output channels, and how input and output channels narrow together);
    `head_of_channels()` (output channels that compaction keeps
    or removes together); `sliced_weights` and `narrowed_config` (the layer restricted to kept
    channels); `aggregation_macs()` (its cost besides the kernels); and, for the prunable form
    of a stock Keras layer, `stock_class`, `stock_options` and `stock_config` (how
    `keras_gcnprune.pruning.prune_low_magnitude` makes it from the stock layer and
    `strip_pruning` gives the stock layer back). Reachability, channel groups, compaction, the
    cost reports and the conversions use only these, so a new layer type is one file.

    Args:
        freeze_pruned: Re-apply the mask to the latent kernel after every optimizer step.
        kernel_initializer: Initializer of the latent kernels.
        kernel_regularizer: Regularizer of the latent kernels.
        strip_to_stock: `strip_pruning` returns this layer's `stock_class` (the stock Keras
            layer it was made from by `prune_low_magnitude`, which sets it) with the mask baked
            into the kernel, instead of a masked layer.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    stock_class: type | None = None  # the stock Keras layer this type is the prunable form of
    # The protocol in tiers: `masked_weights()` is all that magnitude and multi-rate pruning
    # (ranked extraction) need; each capability is the methods a layer type adds for more.
    CAPABILITIES = {
        "reachability": ("shadow_forward", "shadow_backward", "shadow_used"),
        "compaction": ("narrowed_config",),
        "stock": ("stock_options", "stock_config"),
    }
    # Options of a stock layer that a prunable form cannot honour: refused, never dropped.
    STOCK_OPTIONS_REFUSED = ("bias_regularizer", "activity_regularizer", "kernel_constraint",
                             "depthwise_constraint", "bias_constraint", "quantization_config")

    def __init__(
        self,
        freeze_pruned: bool = False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        strip_to_stock: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.strip_to_stock = bool(strip_to_stock)
        if self.strip_to_stock and self.stock_class is None:
            raise ValueError(f"{type(self).__name__} has no stock Keras layer to strip to; "
                             "leave strip_to_stock False.")
        self.freeze_pruned = bool(freeze_pruned)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self._masked_weights: list[MaskedWeight] = []
        self.mask_source = None

    def add_masked_weight(
        self,
        name: str,
        shape: tuple[int, ...],
        initializer=None,
        regularize: bool = True,
        role: str = "channels",
        in_axis: int | None = None,
        out_axes: tuple[int, ...] = (),
    ) -> tuple[keras.Variable, keras.Variable]:
        """Creates a latent weight and its mask (all ones) and registers them as prunable."""
        if not self._masked_weights:
            # Steps of pruning done so far, saved with the model so that a schedule continues
            # after loading, even under a new optimizer.
            self.pruning_step = self.add_weight(
                name="pruning_step", shape=(), dtype="int64", initializer="zeros",
                trainable=False,
            )
        mask = self.add_weight(
            name=f"{name}_mask", shape=shape, initializer="ones", trainable=False
        )
        kernel = self.add_weight(
            name=name,
            shape=shape,
            initializer=initializer or self.kernel_initializer,
            regularizer=self.kernel_regularizer if regularize else None,
            constraint=MaskConstraint(mask) if self.freeze_pruned else None,
        )
        self._masked_weights.append(MaskedWeight(kernel, mask, role, in_axis, out_axes))
        return kernel, mask

    def masked(self, kernel: keras.Variable, mask: keras.Variable, training=None):
        """The weights the forward pass uses: `kernel * mask`.

        With a `mask_source` set (a callable `(layer, kernel, mask, training) -> tensor`, which
        topologically consistent pruning installs for its supervision and multi-rate pruning
        for its band-stop masks), the tensor it returns is used instead; its gradient reaches
        the latent weights.
        """
        if self.mask_source is not None:
            return self.mask_source(self, kernel, mask, training)
        return kernel * mask

    def masked_weights(self) -> list[MaskedWeight]:
        """Returns the prunable weights of this layer (empty before the layer is built)."""
        return list(self._masked_weights)

    @classmethod
    def implements(cls, capability: str) -> bool:
        """Whether this layer type implements a capability of the pruning protocol beyond its
        masked weights (`CAPABILITIES`): `"reachability"` (TCP, consistent extraction,
        connectivity reports), `"compaction"` or `"stock"` (the prunable form of a stock
        Keras layer).

        Example:
            >>> from keras_gcnprune.layers import GraphConv
            >>> GraphConv.implements("reachability")
            True
        """
        methods = cls.CAPABILITIES[capability]
        return all(any(method in klass.__dict__ for klass in cls.__mro__
                       if klass is not MaskedLayer and issubclass(klass, MaskedLayer))
                   for method in methods)

    # ---- the pruning protocol ----

    def shadow_forward(self, inputs: list, shadow: Shadow):
        """Accessibility: the output's shadow from the inputs' (one sample, before the step).

        Args:
            inputs: The shadows of the layer's inputs, shaped like one sample of each.
            shadow: The algebra and candidate masks (`Shadow.mask(weight)` reads a mask).

        Returns:
            The count of accessible paths into every output neuron.
        """
        raise self._not_implemented("shadow_forward")

    def shadow_backward(self, out_co, in_shapes: list, shadow: Shadow) -> list:
        """Co-accessibility: the inputs' shadows from the output's.

        Args:
            out_co: The output's co-accessibility shadow (one sample).
            in_shapes: The shape of one sample of every input.
            shadow: The algebra and candidate masks.

        Returns:
            One count per input, of the co-accessible paths out of each of its neurons.
        """
        raise self._not_implemented("shadow_backward")

    def shadow_used(self, acc_in, co_out, shadow: Shadow) -> dict:
        """Which entries of every masked weight lie on an input-to-output path.

        Args:
            acc_in: The (stepped) accessibility shadow of the layer's input.
            co_out: The (stepped) co-accessibility shadow of its output.
            shadow: The algebra and candidate masks.

        Returns:
            By mask path, a kernel-shaped count of the paths through each entry if kept.
        """
        raise self._not_implemented("shadow_used")

    def output_kernels(self) -> list[MaskedWeight]:
        """The channel kernels whose output axes are the layer's output channels (all of them
        but an inner step's, such as a separable convolution's depthwise kernel)."""
        return [weight for weight in self.masked_weights() if weight.role == "channels"]

    def channel_coupling(self) -> str:
        """How the layer's input channels relate to its output channels for narrowing:
        `"independent"` (any output channel may read any input channel), `"same"` (output
        channel i reads input channel i alone: removing a channel removes it on both sides) or
        `"fixed"` (neither side can be narrowed)."""
        return "independent"

    def head_of_channels(self) -> np.ndarray | None:
        """One-hot `(output channels, heads)` of output channels that share weights beyond
        their own kernel entries (an attention head's adjacency), None where every output
        channel stands alone."""
        return None

    def sliced_weights(self, keep_in: np.ndarray, keep_out: np.ndarray) -> list[np.ndarray]:
        """The values of `self.weights`, in order, restricted to the kept input and output
        channels: channel kernels and their masks along their axes, the bias along the output
        channels, every other weight whole."""
        channel_weights = {}
        for weight in self.masked_weights():
            if weight.role == "channels":
                channel_weights[id(weight.kernel)] = channel_weights[id(weight.mask)] = weight
        bias = getattr(self, "bias", None)
        sliced = []
        for variable in self.weights:
            value = ops.convert_to_numpy(variable)
            if id(variable) in channel_weights:
                value = channel_weights[id(variable)].slice_channels(value, keep_in, keep_out)
            elif bias is not None and variable is bias:
                value = value[keep_out]
            sliced.append(value)
        return sliced

    def narrowed_config(self, keep_out: np.ndarray) -> dict:
        """The config of this layer with only the output channels `keep_out`."""
        raise self._not_implemented("narrowed_config")

    def aggregation_macs(self) -> int:
        """Multiply-accumulates per output position besides the kernels' (graph aggregation)."""
        return 0

    @classmethod
    def stock_options(cls, config: dict) -> dict:
        """This type's options for the config of a `stock_class` layer (its name, dtype and
        trainability are added by `from_stock`); raises `ValueError` naming an option it
        cannot honour."""
        raise NotImplementedError(f"{cls.__name__} is not the prunable form of a stock layer.")

    def stock_config(self) -> dict:
        """The config of the `stock_class` layer that computes what this layer computes."""
        raise self._not_implemented("stock_config")

    @classmethod
    def from_stock(cls, layer: keras.layers.Layer) -> MaskedLayer:
        """The prunable form of a stock layer, unbuilt, with `strip_to_stock` set.

        Args:
            layer: A `stock_class` layer.

        Returns:
            A new layer of this type with the stock layer's options and name.
        """
        config = layer.get_config()
        for option in cls.STOCK_OPTIONS_REFUSED:
            if config.get(option) is not None:
                raise ValueError(
                    f"Layer {layer.name!r} ({type(layer).__name__}) has {option}="
                    f"{config[option]!r}, which {cls.__name__} does not support; remove it "
                    "before pruning.")
        return cls(**cls.stock_options(config), name=config["name"], dtype=config["dtype"],
                   trainable=config["trainable"], strip_to_stock=True)

    def stock_kernels(self) -> dict[str, MaskedWeight]:
        """The `stock_class` layer's kernel attributes and the masked weights they hold."""
        (weight,) = self.masked_weights()
        return {"kernel": weight}

    def load_stock_weights(self, stock: keras.layers.Layer) -> None:
        """Sets this built layer's kernels and bias from a built `stock_class` layer."""
        for name, weight in self.stock_kernels().items():
            weight.kernel.assign(getattr(stock, name))
        if getattr(self, "bias", None) is not None:
            self.bias.assign(stock.bias)

    def to_stock(self, masks: dict | None = None) -> keras.layers.Layer:
        """The `stock_class` layer, built, with `kernel * mask` as its kernels and the bias.

        Args:
            masks: Masks to bake instead of the layer's own, by mask path.
        """
        masks = masks or {}
        stock = self.stock_class.from_config(self.stock_config())
        stock.build(stock_input_shape(self.masked_weights()[0].kernel))
        for name, weight in self.stock_kernels().items():
            getattr(stock, name).assign(weight.kernel * masks.get(weight.mask.path, weight.mask))
        if getattr(self, "bias", None) is not None:
            stock.bias.assign(self.bias)
        return stock

    def _not_implemented(self, method: str) -> NotImplementedError:
        return NotImplementedError(
            f"{type(self).__name__} ({self.name!r}) does not implement {method}, a part of the "
            "pruning protocol of keras_gcnprune.layers.MaskedLayer that every prunable layer "
            "type implements.")

    def load_own_variables(self, store) -> None:
        """Loads the saved weights, refusing masks with values other than 0 and 1 (a damaged
        or hand-edited file), which would scale weights and misstate every pruning rate."""
        super().load_own_variables(store)
        for weight in self.masked_weights():
            values = np.asarray(weight.mask.numpy())
            wrong = values[(values != 0) & (values != 1)]
            if wrong.size:
                raise ValueError(
                    f"Layer {self.name!r}: mask {weight.mask.path!r} holds {wrong.size} values "
                    f"other than 0 and 1 (e.g. {float(wrong.flat[0])!r}); a mask keeps a weight "
                    "(1) or prunes it (0). The file is damaged: restore or retrain it.")

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            strip_to_stock=self.strip_to_stock,
            freeze_pruned=self.freeze_pruned,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


def stock_input_shape(kernel) -> tuple:
    """The input shape that builds a Dense or convolution layer with this first kernel: its
    rank is the kernel's, its channels the kernel's second-to-last axis."""
    return (None,) * (len(kernel.shape) - 1) + (kernel.shape[-2],)


def matmul_last_axis(inputs, matrix):
    """Multiplies the last axis of `inputs` by a 2-D matrix through a 2-D matmul.

    Reshaping to 2-D first makes TFLite lower the product to FULLY_CONNECTED instead of a
    broadcasting BATCH_MATMUL, which mobile GPU delegates support only in limited cases.
    """
    rows = ops.reshape(inputs, (-1, ops.shape(matrix)[0]))
    return ops.matmul(rows, matrix)


def check_skeleton_input(layer: keras.layers.Layer, input_shape, joints: int) -> int:
    """Checks that inputs are `(N, T, V, C)` with `joints` joints; returns C."""
    if len(input_shape) != 4 or input_shape[-2] != joints:
        raise ValueError(
            f"{layer.name} expects inputs (N, T, V, C) with V={joints} joints (from its "
            f"adjacency), got shape {tuple(input_shape)}."
        )
    return input_shape[-1]


def static_dim(inputs, axis: int):
    """Returns the static size of an axis when known, else its dynamic size."""
    size = inputs.shape[axis]
    return ops.shape(inputs)[axis] if size is None else size
