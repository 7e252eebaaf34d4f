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
        rest = [a for a in range(array.ndim) if a != self.in_axis and a not in self.out_axes]
        array = np.transpose(array, (self.in_axis, *self.out_axes, *rest))
        out_size = int(np.prod([array.shape[1 + i] for i in range(len(self.out_axes))]))
        return array.reshape(array.shape[0], out_size, -1).sum(axis=-1)


class MaskedLayer(keras.layers.Layer):
    """Base class of the prunable layers: creates masked kernels and lists them.

    Args:
        freeze_pruned: Re-apply the mask to the latent kernel after every optimizer step.
        kernel_initializer: Initializer of the latent kernels.
        kernel_regularizer: Regularizer of the latent kernels.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        freeze_pruned: bool = False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
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

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            freeze_pruned=self.freeze_pruned,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config


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
