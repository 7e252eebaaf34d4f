"""Accessibility and co-accessibility of a masked network (docs/design.md).

The network's binary shadow replaces every kernel by its mask, every adjacency by its support,
biases and normalisation shifts by zero and activations by the identity. Ones fed at the inputs
mark the *accessible* neurons; ones sent back from the logits mark the *co-accessible* ones.
Shadows are arrays over each sample's whole tensor (frames x joints x channels), so the result is
exact through graph aggregations, strides, reshapes and permutations. A kept weight is
*consistent* (on an input-to-output path) when some position links an accessible input neuron to
a co-accessible output neuron through it.

The same rules run in two algebras: `EXACT` (numpy, a hard step after every layer), which the
selection and the reports use, and `SOFT` (backend tensors, the smooth step `1 - exp(-x)`,
positive exactly where the hard step is 1), which the training-time supervision runs in the
graph of every training step (see `supervision.py`).

Supported layers: the package's masked layers, and InputLayer, BatchNormalization, activations,
Dropout, Reshape, Flatten, Permute, Add, Concatenate, GlobalAveragePooling1D/2D and
GlobalMaxPooling1D/2D. Any other layer raises an error that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_gcnprune.layers import (
    ConstantOffset,
    GraphAttention,
    GraphConv,
    MaskedDense,
    MaskedWeight,
    TemporalConv,
)
from keras_gcnprune.pruning.masks import prunable_weights

Masks = dict[str, np.ndarray]  # mask variable path -> 0/1 array
IDENTITY_LAYERS = (
    keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.ReLU,
    keras.layers.Activation, keras.layers.Dropout, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.PReLU, keras.layers.Softmax, keras.layers.SpatialDropout2D, ConstantOffset,
)
POOLING_LAYERS = (
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D,
)


@dataclass(frozen=True)
class Algebra:
    """How shadows are computed: an array module, the step applied after every layer, the
    support of a real-valued array, and the conversion of variables and tensors to arrays."""

    xp: ModuleType
    step: Callable
    support: Callable
    value: Callable


def _ops_support(x):
    return ops.cast(ops.not_equal(x, 0.0), "float32")


EXACT = Algebra(
    np,
    step=lambda x: (np.asarray(x) > 0).astype(np.float32),
    support=lambda x: (np.asarray(x) != 0).astype(np.float32),
    value=lambda x: np.asarray(ops.convert_to_numpy(x), dtype=np.float32),
)
SOFT = Algebra(
    # A smooth OR of the incoming counts: 0 when nothing arrives, close to 1 from one path on,
    # and positive exactly where the count is (expm1 keeps small counts from rounding to 0).
    ops, step=lambda x: -ops.expm1(-x), support=_ops_support, value=ops.convert_to_tensor,
)


@dataclass(frozen=True)
class Shadow:
    """An algebra and the candidate masks (by mask path; other masks come from the model)."""

    algebra: Algebra
    masks: dict = field(default_factory=dict)
    _memo: dict = field(default_factory=dict)

    @property
    def xp(self) -> ModuleType:
        return self.algebra.xp

    def once(self, key: str, compute: Callable):
        """`compute()`, evaluated once per propagation (the rules ask for supports thrice)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def mask(self, weight: MaskedWeight):
        if weight.mask.path in self.masks:
            return self.masks[weight.mask.path]
        return self.algebra.value(weight.mask)


def current_masks(model: keras.Model) -> Masks:
    """The masks of every masked weight of `model`, by mask path."""
    return {
        w.mask.path: w.mask.numpy() for w in prunable_weights(model)
    }


# ---- per-layer rules: forward shadow, backward shadow, and which kernel entries are used ----

def _graph_conv_parts(layer: GraphConv, shadow: Shadow):
    """Kernel, its mask, the learned offset's masked weight (or None), and the support of
    each subset's effective adjacency `A_k + B_k * M_k`, `(K, V, V)`."""
    kernel, *offset = layer.masked_weights()
    offset = offset[0] if offset else None

    def support():
        adjacency = shadow.algebra.value(layer.adjacency)
        if offset is not None:
            adjacency = adjacency + shadow.algebra.value(offset.kernel) * shadow.mask(offset)
        return shadow.algebra.support(adjacency)

    return kernel, shadow.mask(kernel), offset, shadow.once(layer.name, support)


def _graph_conv_forward(layer, inputs, shadow):
    xp = shadow.xp
    _, mask, _, support = _graph_conv_parts(layer, shadow)
    x = inputs[0]
    return sum(
        xp.swapaxes(xp.matmul(xp.swapaxes(xp.matmul(x, mask[:, :, k]), 1, 2), support[k]), 1, 2)
        for k in range(support.shape[0])
    )


def _graph_conv_backward(layer, out_co, in_shapes, shadow):
    xp = shadow.xp
    _, mask, _, support = _graph_conv_parts(layer, shadow)
    return [sum(
        xp.matmul(xp.matmul(support[k], out_co), xp.transpose(mask[:, :, k]))
        for k in range(support.shape[0])
    )]


def _graph_conv_used(layer, acc_in, co_out, shadow):
    xp = shadow.xp
    kernel, mask, offset, support = _graph_conv_parts(layer, shadow)
    acc = xp.transpose(xp.reshape(acc_in, (-1, acc_in.shape[-1])))
    used = {kernel.mask.path: xp.stack(
        [xp.matmul(acc, xp.reshape(xp.matmul(support[k], co_out), (-1, co_out.shape[-1])))
         for k in range(support.shape[0])],
        axis=-1,
    )}
    if offset is not None:
        # An offset entry (k, v, w) carries joint v's subset-k projection to joint w.
        used[offset.mask.path] = xp.stack([
            xp.einsum("tvf,twf->vw", xp.matmul(acc_in, mask[:, :, k]), co_out)
            for k in range(support.shape[0])
        ])
    return used


def _attention_parts(layer: GraphAttention, shadow: Shadow):
    """Kernel, its mask as `(C_in, channels)`, adjacency weight, and the support of each output
    channel's head adjacency `(channels, V, V)`: one form for equal and unequal head widths."""
    kernel, adjacency = layer.masked_weights()
    xp = shadow.xp
    heads = shadow.algebra.value(layer.head_of_channels())

    def channel_support():
        head_support = shadow.algebra.support(
            shadow.algebra.value(adjacency.kernel) * shadow.mask(adjacency))
        return xp.einsum("kh,hvw->kvw", heads, head_support)

    support = shadow.once(layer.name, channel_support)
    mask = xp.reshape(shadow.mask(kernel), (kernel.kernel.shape[0], -1))
    return kernel, mask, adjacency, support, heads


def _attention_forward(layer, inputs, shadow):
    xp = shadow.xp
    _, mask, _, support, _ = _attention_parts(layer, shadow)
    return xp.einsum("tvk,kvw->twk", xp.einsum("tvc,ck->tvk", inputs[0], mask), support)


def _attention_backward(layer, out_co, in_shapes, shadow):
    xp = shadow.xp
    _, mask, _, support, _ = _attention_parts(layer, shadow)
    spread = xp.einsum("twk,kvw->tvk", out_co, support)
    return [xp.einsum("tvk,ck->tvc", spread, mask)]


def _attention_used(layer, acc_in, co_out, shadow):
    xp = shadow.xp
    kernel, mask, adjacency, support, heads = _attention_parts(layer, shadow)
    spread = xp.einsum("kvw,twk->tvk", support, co_out)
    projected = xp.einsum("tvc,ck->tvk", acc_in, mask)
    used_kernel = xp.einsum("tvc,tvk->ck", acc_in, spread)
    return {
        kernel.mask.path: xp.reshape(used_kernel, tuple(kernel.mask.shape)),
        adjacency.mask.path: xp.einsum("kvw,kh->hvw",
                                       xp.einsum("tvk,twk->kvw", projected, co_out), heads),
    }


def _temporal_selections(layer: TemporalConv, frames_in: int):
    """Yields (tap, S) of a 'same' temporal conv: S[t_out, t_in] = 1 where the tap reads t_in."""
    stride, dilation, size = layer.strides, layer.dilation_rate, layer.kernel_size
    frames_out = -(-frames_in // stride)
    pad = max((frames_out - 1) * stride + (size - 1) * dilation + 1 - frames_in, 0) // 2
    for tap in range(size):
        source = np.arange(frames_out) * stride + tap * dilation - pad
        valid = (source >= 0) & (source < frames_in)
        select = np.zeros((frames_out, frames_in), np.float32)
        select[np.arange(frames_out)[valid], source[valid]] = 1.0
        yield tap, select


def _over_frames(select, tensor, xp):
    """Applies a (T_out, T_in) frame matrix to a (T_in, V, C) tensor."""
    moved = xp.matmul(select, xp.reshape(tensor, (tensor.shape[0], -1)))
    return xp.reshape(moved, (select.shape[0], *tuple(tensor.shape[1:])))


# In the SOFT algebra (the graph of every training step) a temporal rule is one convolution of
# the shadow: the forward is the layer's own convolution with the mask as kernel, the backward
# and the used entries are that convolution's input and kernel gradients. In numpy (EXACT), and
# for dilated layers (TensorFlow's CPU kernels have no dilated convolution gradients), each of
# the k taps moves frames with a selection matrix.
def _as_convolution(layer, shadow) -> bool:
    return shadow.xp is not np and layer.dilation_rate == 1


def _conv_options(layer) -> dict:
    return {"strides": [1, layer.strides, 1, 1], "padding": "SAME",
            "dilations": [1, layer.dilation_rate, 1, 1]}


def _temporal_forward(layer, inputs, shadow):
    xp = shadow.xp
    (kernel,) = layer.masked_weights()
    if _as_convolution(layer, shadow):
        if layer.kernel_size == 1:  # as the layer does: strided 1x1 convolutions are unsafe
            return xp.matmul(inputs[0][::layer.strides], shadow.mask(kernel)[0, 0])
        return tf.nn.conv2d(inputs[0][None], shadow.mask(kernel), **_conv_options(layer))[0]
    mask = shadow.mask(kernel)[:, 0]  # (k, C, F)
    return sum(
        _over_frames(select, xp.matmul(inputs[0], mask[tap]), xp)
        for tap, select in _temporal_selections(layer, inputs[0].shape[0])
    )


def _temporal_backward(layer, out_co, in_shapes, shadow):
    xp = shadow.xp
    (kernel,) = layer.masked_weights()
    if _as_convolution(layer, shadow):
        mask = shadow.mask(kernel)
        if layer.kernel_size == 1:
            back = xp.matmul(out_co, xp.transpose(mask[0, 0]))
            return [_spread_frames(back, layer.strides, in_shapes[0][0])]
        return [tf.nn.conv2d_transpose(out_co[None], mask, (1, *in_shapes[0][:2], mask.shape[2]),
                                       **_conv_options(layer))[0]]
    mask = shadow.mask(kernel)[:, 0]
    return [sum(
        xp.matmul(_over_frames(select.T, out_co, xp), xp.transpose(mask[tap]))
        for tap, select in _temporal_selections(layer, in_shapes[0][0])
    )]


def _spread_frames(x, stride: int, frames: int):
    """(T_out, V, C) placed at every `stride`-th of `frames` frames, zeros between."""
    if stride == 1:
        return x
    zeros = ops.zeros((x.shape[0], stride - 1, *x.shape[1:]), x.dtype)
    spread = ops.reshape(ops.concatenate([x[:, None], zeros], axis=1), (-1, *x.shape[1:]))
    return spread[:frames]


def _temporal_used(layer, acc_in, co_out, shadow):
    xp = shadow.xp
    (kernel,) = layer.masked_weights()
    if _as_convolution(layer, shadow):
        if layer.kernel_size == 1:
            taps = xp.matmul(xp.transpose(xp.reshape(acc_in[::layer.strides],
                                                     (-1, acc_in.shape[-1]))),
                             xp.reshape(co_out, (-1, co_out.shape[-1])))
            return {kernel.mask.path: taps[None, None]}
        used = tf.compat.v1.nn.conv2d_backprop_filter(
            acc_in[None], tuple(kernel.mask.shape), co_out[None], **_conv_options(layer))
        return {kernel.mask.path: used}
    co = xp.reshape(co_out, (-1, co_out.shape[-1]))
    taps = [
        xp.matmul(xp.transpose(xp.reshape(_over_frames(select, acc_in, xp),
                                          (-1, acc_in.shape[-1]))), co)
        for _, select in _temporal_selections(layer, acc_in.shape[0])
    ]
    return {kernel.mask.path: xp.expand_dims(xp.stack(taps), 1)}


def _dense_forward(layer, inputs, shadow):
    (kernel,) = layer.masked_weights()
    return shadow.xp.matmul(inputs[0], shadow.mask(kernel))


def _dense_backward(layer, out_co, in_shapes, shadow):
    (kernel,) = layer.masked_weights()
    return [shadow.xp.matmul(out_co, shadow.xp.transpose(shadow.mask(kernel)))]


def _dense_used(layer, acc_in, co_out, shadow):
    xp = shadow.xp
    (kernel,) = layer.masked_weights()
    acc = xp.reshape(acc_in, (-1, acc_in.shape[-1]))
    co = xp.reshape(co_out, (-1, co_out.shape[-1]))
    return {kernel.mask.path: xp.matmul(xp.transpose(acc), co)}


@dataclass(frozen=True)
class Rule:
    forward: Callable
    backward: Callable
    used: Callable | None = None


MASKED_RULES: dict[type, Rule] = {
    GraphConv: Rule(_graph_conv_forward, _graph_conv_backward, _graph_conv_used),
    GraphAttention: Rule(_attention_forward, _attention_backward, _attention_used),
    TemporalConv: Rule(_temporal_forward, _temporal_backward, _temporal_used),
    MaskedDense: Rule(_dense_forward, _dense_backward, _dense_used),
}


def _structural_rule(layer) -> Rule:
    """Rules of the layers that only move, merge or pass neurons."""
    if isinstance(layer, IDENTITY_LAYERS):
        return Rule(lambda layer_, x, s: x[0], lambda layer_, co, shapes, s: [co])
    if isinstance(layer, (keras.layers.Reshape, keras.layers.Flatten)):
        return Rule(
            lambda layer_, x, s: s.xp.reshape(x[0], tuple(layer_.output.shape[1:])),
            lambda layer_, co, shapes, s: [s.xp.reshape(co, shapes[0])],
        )
    if isinstance(layer, keras.layers.Permute):
        order = [d - 1 for d in layer.dims]
        return Rule(
            lambda layer_, x, s: s.xp.transpose(x[0], order),
            lambda layer_, co, shapes, s: [s.xp.transpose(co, list(np.argsort(order)))],
        )
    if isinstance(layer, keras.layers.Add):
        return Rule(lambda layer_, x, s: sum(x), lambda layer_, co, shapes, s: [co] * len(shapes))
    if isinstance(layer, keras.layers.Concatenate):
        return Rule(_concat_forward, _concat_backward)
    if isinstance(layer, POOLING_LAYERS) and not layer.keepdims:
        return Rule(
            lambda layer_, x, s: s.xp.sum(s.xp.reshape(x[0], (-1, x[0].shape[-1])), axis=0),
            lambda layer_, co, shapes, s: [s.xp.broadcast_to(co, shapes[0])],
        )
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) is not supported by the accessibility "
        "analysis; supported: the keras_gcnprune layers, BatchNormalization, activations, "
        "Dropout, Reshape, Flatten, Permute, Add, Concatenate and global pooling."
    )


def _concat_axis(layer, rank: int) -> int:
    axis = layer.axis if layer.axis >= 0 else layer.axis + rank + 1
    return axis - 1  # the shadows have no batch axis


def _concat_forward(layer, inputs, shadow):
    return shadow.xp.concatenate(inputs, axis=_concat_axis(layer, len(inputs[0].shape)))


def _concat_backward(layer, out_co, in_shapes, shadow):
    axis = _concat_axis(layer, len(out_co.shape))
    cuts = [int(c) for c in np.cumsum([shape[axis] for shape in in_shapes])[:-1]]
    return shadow.xp.split(out_co, cuts, axis=axis)


def rule_for(layer) -> Rule:
    for kind, rule in MASKED_RULES.items():
        if isinstance(layer, kind):
            return rule
    return _structural_rule(layer)


# ---- propagation over a functional model ----

@dataclass
class Reachability:
    """Shadows of every tensor (by id), which kernel entries are used (by mask path), and the
    input and output tensor ids of every layer (by name)."""

    accessible: dict[int, np.ndarray]
    coaccessible: dict[int, np.ndarray]
    used: dict[str, np.ndarray]
    layer_tensors: dict[str, tuple[int, int]]

    def live_channels(self, tensor_id: int) -> np.ndarray:
        """Channels (last axis) that are accessible and co-accessible at some position."""
        live = self.accessible[tensor_id] & self.coaccessible[tensor_id]
        return live.reshape(-1, live.shape[-1]).any(axis=0)


def graph_steps(model: keras.Model) -> list[tuple]:
    """`(layer, input tensors, output tensors)` of every layer of a functional model, in
    execution order; each layer must be called once."""
    if not isinstance(model, keras.Model) or not hasattr(model, "operations"):
        raise ValueError("Accessibility needs a functional keras.Model.")
    steps = []
    for operation in model.operations:
        if isinstance(operation, keras.layers.InputLayer):
            continue
        if len(operation._inbound_nodes) != 1:
            raise ValueError(
                f"Layer {operation.name!r} is called {len(operation._inbound_nodes)} times; the "
                "accessibility analysis needs every layer used once."
            )
        node = operation._inbound_nodes[0]
        steps.append((operation, list(node.input_tensors), list(node.output_tensors)))
    return steps


def _ones(tensor, xp):
    return xp.ones(tuple(tensor.shape[1:]), dtype="float32")


def propagate(model: keras.Model, shadow: Shadow, accessibility: bool = True,
              coaccessibility: bool = True) -> tuple[dict, dict, dict]:
    """Runs both propagations of the shadow network in the shadow's algebra.

    Args:
        model: A functional model of supported layers.
        shadow: The algebra and the candidate masks.
        accessibility: Propagate from the inputs; when off, every neuron counts as accessible.
        coaccessibility: Propagate from the outputs; when off, every neuron counts as
            co-accessible.

    Returns:
        `(accessible, coaccessible, used)`: stepped shadows by tensor id, and for every masked
        weight (by mask path) the stepped count of input-to-output paths through each entry.
    """
    steps, xp, step = graph_steps(model), shadow.xp, shadow.algebra.step
    accessible = {id(t): _ones(t, xp) for t in model.inputs}
    for layer, inputs, outputs in steps:
        if accessibility:
            result = rule_for(layer).forward(layer, [accessible[id(t)] for t in inputs], shadow)
            accessible[id(outputs[0])] = step(result)
        else:
            accessible[id(outputs[0])] = _ones(outputs[0], xp)
    coaccessible = {id(t): _ones(t, xp) for t in model.outputs}
    for layer, inputs, outputs in reversed(steps):
        if not coaccessibility:
            coaccessible.update({id(t): _ones(t, xp) for t in inputs})
            continue
        out_co = coaccessible.get(id(outputs[0]))
        if out_co is None:
            out_co = xp.zeros(tuple(outputs[0].shape[1:]), dtype="float32")
        shapes = [tuple(t.shape[1:]) for t in inputs]
        for tensor, co in zip(inputs, rule_for(layer).backward(layer, out_co, shapes, shadow)):
            coaccessible[id(tensor)] = step(coaccessible.get(id(tensor), 0.0) + co)
    used = {}
    for layer, inputs, outputs in steps:
        rule = rule_for(layer)
        if rule.used is not None:
            entries = rule.used(layer, accessible[id(inputs[0])], coaccessible[id(outputs[0])],
                                shadow)
            used.update({path: step(value) for path, value in entries.items()})
    return accessible, coaccessible, used


def reachability(model: keras.Model, masks: Masks | None = None) -> Reachability:
    """Propagates the binary shadow forwards (accessibility) and backwards (co-accessibility).

    Args:
        model: A functional model of supported layers.
        masks: Candidate masks by mask path (default: the model's current masks).

    Returns:
        A `Reachability` with boolean shadows and, for every masked weight, a boolean array of
        the entries that lie on an input-to-output path if kept.
    """
    accessible, coaccessible, used = propagate(model, Shadow(EXACT, masks or {}))
    return Reachability(
        {k: v > 0 for k, v in accessible.items()},
        {k: v > 0 for k, v in coaccessible.items()},
        {k: v > 0 for k, v in used.items()},
        {layer.name: (id(inputs[0]), id(outputs[0]))
         for layer, inputs, outputs in graph_steps(model)},
    )


def consistent_masks(model: keras.Model, masks: Masks | None = None) -> Masks:
    """Keeps only the kept entries that lie on an input-to-output path.

    One pass suffices: removing a weight whose input is inaccessible (or whose output is not
    co-accessible) changes no other neuron's accessibility (co-accessibility).
    """
    masks = {**current_masks(model), **(masks or {})}
    used = reachability(model, masks).used
    return {path: (mask * used[path]).astype(np.float32) for path, mask in masks.items()}


def disconnected_fraction(model: keras.Model, masks: Masks | None = None,
                          include_adjacency: bool = True) -> float:
    """Fraction of kept prunable weights that lie on no input-to-output path
    (`include_adjacency`: see `prunable_weights`)."""
    masks = {**current_masks(model), **(masks or {})}
    used = reachability(model, masks).used
    paths = [w.mask.path for w in prunable_weights(model, include_adjacency)]
    kept = sum(float(masks[p].sum()) for p in paths)
    wasted = sum(float((masks[p] * ~used[p]).sum()) for p in paths)
    return wasted / kept if kept else 0.0
