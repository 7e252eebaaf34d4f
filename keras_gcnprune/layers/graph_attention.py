"""Masked multi-head graph attention: each head a learned joint adjacency and its own filter."""

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


@keras.saving.register_keras_serializable(package="keras_gcnprune")
class GraphAttention(MaskedLayer):
    """Multi-head graph attention with learned, prunable per-head adjacencies.

    Head `h` projects every joint with its own filter `W_h` (`C_in -> channels`) and mixes joints
    with its own learned `V x V` matrix `P_h`, initialised from the layout's adjacency. Heads are
    concatenated: the output has `heads * channels` channels. Both the filters (kernel
    `(C_in, heads, channels)`) and the adjacencies (`(heads, V, V)`) carry masks.

    Heads may also have different widths (`channels` a list, one per head; the kernel is then
    `(C_in, sum(channels))`, head after head): `keras_gcnprune.export.compact` builds such
    layers when it removes dead channels of some heads.

    Args:
        heads: Number of heads.
        channels: Output channels per head: one width for all, or a list of `heads` widths.
        adjacency: Initial adjacency `(V, V)`, or `(K, V, V)` whose subsets are summed.
        use_bias: Add a bias per output channel.
        adjacency_noise: Standard deviation of noise added to the initial adjacency of each
            head, so that heads start different.
        freeze_pruned: See `MaskedLayer`.
        **kwargs: Passed to `MaskedLayer`.

    Example:
        >>> from keras_gcnprune.graphs import build_adjacency
        >>> layer = GraphAttention(4, 8, build_adjacency("sbu", "uniform"))
        >>> tuple(layer(np.zeros((2, 1, 15, 6), "float32")).shape)
        (2, 1, 15, 32)
    """

    def __init__(
        self,
        heads: int,
        channels: int,
        adjacency,
        use_bias: bool = True,
        adjacency_noise: float = 0.01,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        widths = [channels] * int(heads) if np.isscalar(channels) else list(channels)
        if int(heads) < 1 or len(widths) != int(heads) or min(widths) < 1:
            raise ValueError(f"heads must be positive and channels a positive width or a list "
                             f"of one positive width per head, got heads={heads} and "
                             f"channels={channels}.")
        adjacency = np.asarray(adjacency, dtype=np.float32)
        if adjacency.ndim == 3:
            adjacency = adjacency.sum(axis=0)
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(
                f"adjacency must have shape (V, V) or (K, V, V), got {adjacency.shape}."
            )
        self.heads = int(heads)
        self.channels = int(channels) if np.isscalar(channels) else [int(w) for w in widths]
        self.widths = tuple(int(w) for w in widths)
        self.adjacency = adjacency
        self.use_bias = bool(use_bias)
        self.adjacency_noise = float(adjacency_noise)

    def build(self, input_shape) -> None:
        joints = self.adjacency.shape[0]
        in_channels = check_skeleton_input(self, input_shape, joints)
        if isinstance(self.channels, int):
            shape, out_axes = (in_channels, self.heads, self.channels), (1, 2)
        else:
            shape, out_axes = (in_channels, sum(self.widths)), (1,)
        self.kernel, self.kernel_mask = self.add_masked_weight(
            "kernel", shape, in_axis=0, out_axes=out_axes
        )
        self.head_adjacency, self.head_adjacency_mask = self.add_masked_weight(
            "head_adjacency",
            (self.heads, joints, joints),
            initializer=self._adjacency_initializer,
            regularize=False,
            role="adjacency",
        )
        self.bias = (
            self.add_weight(
                name="bias", shape=(sum(self.widths),), initializer="zeros"
            )
            if self.use_bias
            else None
        )

    def _adjacency_initializer(self, shape, dtype=None):
        noise = keras.random.normal(shape, stddev=self.adjacency_noise, seed=self.seed_generator)
        return ops.cast(ops.convert_to_tensor(self.adjacency)[None] + noise, dtype or "float32")

    @property
    def seed_generator(self):
        if not hasattr(self, "_seed_generator"):
            self._seed_generator = keras.random.SeedGenerator()
        return self._seed_generator

    def head_of_channels(self) -> np.ndarray:
        """One-hot `(output channels, heads)`: which head each output channel belongs to."""
        return np.repeat(np.eye(self.heads, dtype=np.float32), self.widths, axis=0)

    def _split_heads(self, y) -> list:
        """`(N, channels, V)` -> one tensor per head. One head needs no SPLIT op, and an even
        split lowers to SPLIT rather than SPLIT_V."""
        if self.heads == 1:
            return [y]
        if len(set(self.widths)) == 1:
            return ops.split(y, self.heads, axis=1)
        return ops.split(y, np.cumsum(self.widths)[:-1].tolist(), axis=1)

    def call(self, inputs, training=None):
        total, joints = sum(self.widths), self.adjacency.shape[0]
        kernel = self.masked(self.kernel, self.kernel_mask, training)
        adjacency = self.masked(self.head_adjacency, self.head_adjacency_mask, training)
        projected = matmul_last_axis(inputs, ops.reshape(kernel, (-1, total)))
        y = ops.transpose(ops.reshape(projected, (-1, joints, total)), (0, 2, 1))
        mixed = [
            ops.reshape(ops.matmul(ops.reshape(head, (-1, joints)), adjacency[h]),
                        (-1, width, joints))
            for h, (head, width) in enumerate(zip(self._split_heads(y), self.widths))
        ]
        y = ops.concatenate(mixed, axis=1) if len(mixed) > 1 else mixed[0]
        outputs = ops.reshape(
            ops.transpose(y, (0, 2, 1)), (-1, static_dim(inputs, 1), joints, total)
        )
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], sum(self.widths))

    def _shadow_parts(self, shadow):
        """The kernel's mask as `(C_in, channels)`, and the support of each output channel's
        head adjacency `(channels, V, V)`: one form for equal and unequal head widths."""
        kernel, adjacency = self.masked_weights()
        xp = shadow.xp
        heads = shadow.algebra.value(self.head_of_channels())

        def channel_support():
            head_support = shadow.algebra.support(
                shadow.algebra.value(adjacency.kernel) * shadow.mask(adjacency))
            return xp.einsum("kh,hvw->kvw", heads, head_support)

        mask = xp.reshape(shadow.mask(kernel), (kernel.kernel.shape[0], -1))
        return mask, shadow.once(self.name, channel_support), heads

    def shadow_forward(self, inputs, shadow):
        xp = shadow.xp
        mask, support, _ = self._shadow_parts(shadow)
        return xp.einsum("tvk,kvw->twk", xp.einsum("tvc,ck->tvk", inputs[0], mask), support)

    def shadow_backward(self, out_co, in_shapes, shadow):
        xp = shadow.xp
        mask, support, _ = self._shadow_parts(shadow)
        spread = xp.einsum("twk,kvw->tvk", out_co, support)
        return [xp.einsum("tvk,ck->tvc", spread, mask)]

    def shadow_used(self, acc_in, co_out, shadow):
        xp = shadow.xp
        mask, support, heads = self._shadow_parts(shadow)
        spread = xp.einsum("kvw,twk->tvk", support, co_out)
        projected = xp.einsum("tvc,ck->tvk", acc_in, mask)
        used_kernel = xp.einsum("tvc,tvk->ck", acc_in, spread)
        return {
            self.kernel_mask.path: xp.reshape(used_kernel, tuple(self.kernel_mask.shape)),
            self.head_adjacency_mask.path: xp.einsum(
                "kvw,kh->hvw", xp.einsum("tvk,twk->kvw", projected, co_out), heads),
        }

    def _kept_per_head(self, keep_out: np.ndarray) -> np.ndarray:
        """Number of kept output channels of every head."""
        return self.head_of_channels()[keep_out].sum(axis=0).astype(int)

    def sliced_weights(self, keep_in, keep_out):
        """As `MaskedLayer.sliced_weights`, and the heads left without channels lose their
        adjacency."""
        kept_heads = np.flatnonzero(self._kept_per_head(keep_out))
        adjacency = {id(self.head_adjacency), id(self.head_adjacency_mask)}
        return [value[kept_heads] if id(variable) in adjacency else value
                for variable, value in zip(self.weights, super().sliced_weights(keep_in, keep_out))]

    def narrowed_config(self, keep_out):
        widths = [int(w) for w in self._kept_per_head(keep_out) if w]
        return {**self.get_config(), "heads": len(widths),
                "channels": widths[0] if len(set(widths)) == 1 else widths}

    def aggregation_macs(self) -> int:
        return self.adjacency.shape[-1] * sum(self.widths)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            heads=self.heads,
            channels=self.channels,
            adjacency=self.adjacency.tolist(),
            use_bias=self.use_bias,
            adjacency_noise=self.adjacency_noise,
        )
        return config
