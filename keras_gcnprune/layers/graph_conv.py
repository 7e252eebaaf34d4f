"""Masked graph convolution over the joints of a skeleton sequence."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_gcnprune.layers.masked import (
    MaskedLayer,
    check_skeleton_input,
    matmul_last_axis,
    static_dim,
)


def _as_subsets(adjacency) -> np.ndarray:
    array = np.asarray(adjacency, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ValueError(
            f"adjacency must have shape (K, V, V) or (V, V), got {array.shape}; build one with "
            "keras_gcnprune.graphs.build_adjacency(layout, strategy)."
        )
    return array


def aggregate_joints(projected, adjacency, filters: int, frames):
    """Sums `adjacency[k]`-weighted joint neighbourhoods of K projected subsets.

    Args:
        projected: Tensor (N*T*V, F*K): per joint, F features for each of K subsets.
        adjacency: Tensor (K, V, V).
        filters: F.
        frames: T, static int or scalar tensor.

    Returns:
        Tensor (N, T, V, F) with `y[..., w, f] = sum_k sum_v A[k, v, w] x_k[..., v, f]`.
        Every intermediate has rank <= 4 and the products are 2-D matmuls (docs/design.md,
        Export facts).
    """
    subsets, joints = adjacency.shape[0], adjacency.shape[1]
    y = ops.reshape(projected, (-1, joints, filters, subsets))
    y = ops.transpose(y, (0, 2, 3, 1))  # (N*T, F, K, V)
    y = ops.reshape(y, (-1, subsets * joints))
    y = ops.matmul(y, ops.reshape(adjacency, (subsets * joints, joints)))
    y = ops.reshape(y, (-1, filters, joints))
    y = ops.transpose(y, (0, 2, 1))  # (N*T, V, F)
    return ops.reshape(y, (-1, frames, joints, filters))


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class GraphConv(MaskedLayer):
    """Graph convolution with K adjacency subsets and a masked kernel.

    For input `x` of shape `(N, T, V, C_in)`, computes
    `y[n, t, w] = sum_k sum_v A_k[v, w] (x[n, t, v] @ W_k) + b`, with `W = kernel * mask` of
    shape `(C_in, filters, K)`.

    With `learnable_adjacency`, `A_k` becomes `A_k + B_k * M_k`: the trainable offset `B_k` is a
    masked weight of role `"adjacency"`, pruned with the kernels by default.

    Args:
        filters: Number of output channels.
        adjacency: Array `(K, V, V)` (or `(V, V)`), for example from
            `keras_gcnprune.graphs.build_adjacency`.
        learnable_adjacency: Add a trainable offset `B_k` (initialised at zero) to each `A_k`;
            the offset carries a mask like the kernel (`A_k + B_k * M_k`), so pruning can remove
            learned joint connections too (role `"adjacency"`).
        use_bias: Add a bias per output channel.
        bias_initializer: Initializer of the bias.
        freeze_pruned: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer` (`kernel_initializer`, `kernel_regularizer`, ...).

    Example:
        >>> from keras_gcnprune.graphs import build_adjacency
        >>> layer = GraphConv(8, build_adjacency("sbu", "spatial"))
        >>> tuple(layer(np.zeros((2, 5, 15, 3), "float32")).shape)
        (2, 5, 15, 8)
    """

    def __init__(
        self,
        filters: int,
        adjacency,
        learnable_adjacency: bool = False,
        use_bias: bool = True,
        bias_initializer="zeros",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"filters must be a positive integer, got {filters}.")
        self.filters = int(filters)
        self.adjacency = _as_subsets(adjacency)
        self.learnable_adjacency = bool(learnable_adjacency)
        self.use_bias = bool(use_bias)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def num_subsets(self) -> int:
        return self.adjacency.shape[0]

    def build(self, input_shape) -> None:
        channels = check_skeleton_input(self, input_shape, self.adjacency.shape[1])
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", (channels, self.filters, self.num_subsets), in_axis=0, out_axes=(1,)
        )
        self.adjacency_offset, self.adjacency_offset_mask = (
            self.add_masked_weight(
                "adjacency_offset", self.adjacency.shape, initializer="zeros",
                regularize=False, role="adjacency",
            )
            if self.learnable_adjacency
            else (None, None)
        )
        self.bias = (
            self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )

    def effective_adjacency(self, training=None):
        """The adjacency the forward pass uses: `A`, plus the masked offset when learned."""
        adjacency = ops.convert_to_tensor(self.adjacency)
        if self.adjacency_offset is not None:
            adjacency = adjacency + self.masked(
                self.adjacency_offset, self.adjacency_offset_mask, training)
        return adjacency

    def call(self, inputs, training=None):
        kernel = self.masked(self.kernel, self.kernel_mask, training)
        channels = kernel.shape[0]
        projected = matmul_last_axis(
            inputs, ops.reshape(kernel, (channels, self.filters * self.num_subsets))
        )
        outputs = aggregate_joints(
            projected, self.effective_adjacency(training), self.filters, static_dim(inputs, 1)
        )
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def _shadow_parts(self, shadow):
        """The kernel's mask, the learned offset's masked weight (or None), and the support of
        each subset's effective adjacency `A_k + B_k * M_k`, `(K, V, V)`."""
        kernel, *offset = self.masked_weights()
        offset = offset[0] if offset else None

        def support():
            adjacency = shadow.algebra.value(self.adjacency)
            if offset is not None:
                adjacency = adjacency + shadow.algebra.value(offset.kernel) * shadow.mask(offset)
            return shadow.algebra.support(adjacency)

        return shadow.mask(kernel), offset, shadow.once(self.name, support)

    def shadow_forward(self, inputs, shadow):
        xp = shadow.xp
        mask, _, support = self._shadow_parts(shadow)
        return sum(
            xp.swapaxes(xp.matmul(xp.swapaxes(xp.matmul(inputs[0], mask[:, :, k]), 1, 2),
                                  support[k]), 1, 2)
            for k in range(self.num_subsets)
        )

    def shadow_backward(self, out_co, in_shapes, shadow):
        xp = shadow.xp
        mask, _, support = self._shadow_parts(shadow)
        return [sum(
            xp.matmul(xp.matmul(support[k], out_co), xp.transpose(mask[:, :, k]))
            for k in range(self.num_subsets)
        )]

    def shadow_used(self, acc_in, co_out, shadow):
        xp = shadow.xp
        mask, offset, support = self._shadow_parts(shadow)
        acc = xp.transpose(xp.reshape(acc_in, (-1, acc_in.shape[-1])))
        used = {self.kernel_mask.path: xp.stack(
            [xp.matmul(acc, xp.reshape(xp.matmul(support[k], co_out), (-1, co_out.shape[-1])))
             for k in range(self.num_subsets)],
            axis=-1,
        )}
        if offset is not None:
            # An offset entry (k, v, w) carries joint v's subset-k projection to joint w.
            used[offset.mask.path] = xp.stack([
                xp.einsum("tvf,twf->vw", xp.matmul(acc_in, mask[:, :, k]), co_out)
                for k in range(self.num_subsets)
            ])
        return used

    def narrowed_config(self, keep_out):
        return {**self.get_config(), "filters": len(keep_out)}

    def aggregation_macs(self) -> int:
        return self.num_subsets * self.adjacency.shape[-1] * self.filters

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            filters=self.filters,
            adjacency=self.adjacency.tolist(),
            learnable_adjacency=self.learnable_adjacency,
            use_bias=self.use_bias,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
