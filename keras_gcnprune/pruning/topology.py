"""Accessibility and co-accessibility of a masked network (DESIGN.md section 3).

The network's binary shadow replaces every kernel by its mask, every adjacency by its support,
biases and normalisation shifts by zero and activations by the identity. Ones fed at the inputs
mark the *accessible* neurons; ones sent back from the logits mark the *co-accessible* ones.
Shadows are boolean arrays over each sample's whole tensor (frames x joints x channels), so the
result is exact through graph aggregations, strides, reshapes and permutations. A kept weight is
*consistent* (on an input-to-output path) when some position links an accessible input neuron to
a co-accessible output neuron through it.

Supported layers: the package's masked layers, and InputLayer, BatchNormalization, activations,
Dropout, Reshape, Flatten, Permute, Add, Concatenate, GlobalAveragePooling1D/2D and
GlobalMaxPooling1D/2D. Any other layer raises an error that names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from keras_gcnprune.layers import GraphAttention, GraphConv, MaskedDense, MaskedWeight, TemporalConv
from keras_gcnprune.pruning.masks import prunable_weights

Masks = dict[str, np.ndarray]  # mask variable path -> 0/1 array
IDENTITY_LAYERS = (
    keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.ReLU,
    keras.layers.Activation, keras.layers.Dropout, keras.layers.LeakyReLU, keras.layers.ELU,
    keras.layers.PReLU, keras.layers.Softmax, keras.layers.SpatialDropout2D,
)
POOLING_LAYERS = (
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D,
)


def current_masks(model: keras.Model) -> Masks:
    """The masks of every masked weight of `model`, by mask variable path."""
    return {
        w.mask.path: w.mask.numpy() for w in prunable_weights(model, include_adjacency=True)
    }


def _mask(weight: MaskedWeight, masks: Masks) -> np.ndarray:
    return masks[weight.mask.path] if weight.mask.path in masks else weight.mask.numpy()


def _count(matrix) -> np.ndarray:
    return (np.asarray(matrix) != 0).astype(np.float32)


# ---- per-layer rules: forward shadow, backward shadow, and which kernel entries are used ----

def _graph_conv_parts(layer: GraphConv, masks: Masks):
    (kernel,) = layer.masked_weights()
    support = _count(keras.ops.convert_to_numpy(layer.effective_adjacency()))  # (K, V, V)
    return kernel, _mask(kernel, masks), support


def _graph_conv_forward(layer, inputs, masks):
    _, mask, support = _graph_conv_parts(layer, masks)
    x = inputs[0]
    return sum(
        np.swapaxes(np.swapaxes(x @ mask[:, :, k], 1, 2) @ support[k], 1, 2)
        for k in range(support.shape[0])
    )


def _graph_conv_backward(layer, out_co, in_shapes, masks):
    _, mask, support = _graph_conv_parts(layer, masks)
    return [sum((support[k] @ out_co) @ mask[:, :, k].T for k in range(support.shape[0]))]


def _graph_conv_used(layer, acc_in, co_out, masks):
    kernel, _, support = _graph_conv_parts(layer, masks)
    channels = acc_in.shape[-1]
    acc = acc_in.reshape(-1, channels).T
    used = np.stack(
        [acc @ (support[k] @ co_out).reshape(-1, co_out.shape[-1])
         for k in range(support.shape[0])],
        axis=-1,
    )
    return {kernel.mask.path: used}


def _attention_parts(layer: GraphAttention, masks: Masks):
    kernel, adjacency = layer.masked_weights()
    support = _count(adjacency.kernel.numpy() * _mask(adjacency, masks))  # (H, V, V)
    return kernel, _mask(kernel, masks), adjacency, support


def _attention_forward(layer, inputs, masks):
    _, mask, _, support = _attention_parts(layer, masks)
    out = np.einsum("tvc,chf,hvw->twhf", inputs[0], mask, support, optimize=True)
    return out.reshape(*out.shape[:2], -1)


def _attention_backward(layer, out_co, in_shapes, masks):
    _, mask, _, support = _attention_parts(layer, masks)
    co = out_co.reshape(*out_co.shape[:2], layer.heads, layer.channels)
    return [np.einsum("twhf,chf,hvw->tvc", co, mask, support, optimize=True)]


def _attention_used(layer, acc_in, co_out, masks):
    kernel, mask, adjacency, support = _attention_parts(layer, masks)
    co = co_out.reshape(*co_out.shape[:2], layer.heads, layer.channels)
    return {
        kernel.mask.path: np.einsum("tvc,hvw,twhf->chf", acc_in, support, co, optimize=True),
        adjacency.mask.path: np.einsum("tvc,chf,twhf->hvw", acc_in, mask, co, optimize=True),
    }


def _temporal_taps(layer: TemporalConv, frames_in: int):
    """Yields (tap, input frame indices, output frame indices) of a 'same' temporal conv."""
    stride, dilation, size = layer.strides, layer.dilation_rate, layer.kernel_size
    frames_out = -(-frames_in // stride)
    pad = max((frames_out - 1) * stride + (size - 1) * dilation + 1 - frames_in, 0) // 2
    for tap in range(size):
        source = np.arange(frames_out) * stride + tap * dilation - pad
        valid = (source >= 0) & (source < frames_in)
        yield tap, source[valid], np.arange(frames_out)[valid]


def _temporal_forward(layer, inputs, masks):
    (kernel,) = layer.masked_weights()
    mask = _mask(kernel, masks)[:, 0]  # (k, C, F)
    x = inputs[0]
    out = np.zeros((-(-x.shape[0] // layer.strides), x.shape[1], mask.shape[-1]), np.float32)
    for tap, source, target in _temporal_taps(layer, x.shape[0]):
        out[target] += x[source] @ mask[tap]
    return out


def _temporal_backward(layer, out_co, in_shapes, masks):
    (kernel,) = layer.masked_weights()
    mask = _mask(kernel, masks)[:, 0]
    frames_in = in_shapes[0][0]
    co = np.zeros((frames_in, out_co.shape[1], mask.shape[1]), np.float32)
    for tap, source, target in _temporal_taps(layer, frames_in):
        np.add.at(co, source, out_co[target] @ mask[tap].T)
    return [co]


def _temporal_used(layer, acc_in, co_out, masks):
    (kernel,) = layer.masked_weights()
    used = np.zeros(kernel.mask.shape, np.float32)
    for tap, source, target in _temporal_taps(layer, acc_in.shape[0]):
        used[tap, 0] = (acc_in[source].reshape(-1, acc_in.shape[-1]).T
                        @ co_out[target].reshape(-1, co_out.shape[-1]))
    return {kernel.mask.path: used}


def _dense_forward(layer, inputs, masks):
    (kernel,) = layer.masked_weights()
    return inputs[0] @ _mask(kernel, masks)


def _dense_backward(layer, out_co, in_shapes, masks):
    (kernel,) = layer.masked_weights()
    return [out_co @ _mask(kernel, masks).T]


def _dense_used(layer, acc_in, co_out, masks):
    (kernel,) = layer.masked_weights()
    acc = acc_in.reshape(-1, acc_in.shape[-1])
    co = co_out.reshape(-1, co_out.shape[-1])
    return {kernel.mask.path: acc.T @ co}


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
        return Rule(lambda layer_, x, m: x[0], lambda layer_, co, shapes, m: [co])
    if isinstance(layer, (keras.layers.Reshape, keras.layers.Flatten)):
        return Rule(
            lambda layer_, x, m: x[0].reshape(layer_.output.shape[1:]),
            lambda layer_, co, shapes, m: [co.reshape(shapes[0])],
        )
    if isinstance(layer, keras.layers.Permute):
        order = [d - 1 for d in layer.dims]
        return Rule(
            lambda layer_, x, m: np.transpose(x[0], order),
            lambda layer_, co, shapes, m: [np.transpose(co, np.argsort(order))],
        )
    if isinstance(layer, keras.layers.Add):
        return Rule(lambda layer_, x, m: sum(x), lambda layer_, co, shapes, m: [co] * len(shapes))
    if isinstance(layer, keras.layers.Concatenate):
        return Rule(_concat_forward, _concat_backward)
    if isinstance(layer, POOLING_LAYERS) and not layer.keepdims:
        return Rule(
            lambda layer_, x, m: x[0].reshape(-1, x[0].shape[-1]).sum(axis=0),
            lambda layer_, co, shapes, m: [np.broadcast_to(co, shapes[0]).copy()],
        )
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) is not supported by the accessibility "
        "analysis; supported: the keras_gcnprune layers, BatchNormalization, activations, "
        "Dropout, Reshape, Flatten, Permute, Add, Concatenate and global pooling."
    )


def _concat_axis(layer, rank: int) -> int:
    axis = layer.axis if layer.axis >= 0 else layer.axis + rank + 1
    return axis - 1  # the shadows have no batch axis


def _concat_forward(layer, inputs, masks):
    return np.concatenate(inputs, axis=_concat_axis(layer, inputs[0].ndim))


def _concat_backward(layer, out_co, in_shapes, masks):
    axis = _concat_axis(layer, out_co.ndim)
    cuts = np.cumsum([shape[axis] for shape in in_shapes])[:-1]
    return np.split(out_co, cuts, axis=axis)


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


def _graph(model: keras.Model):
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


def reachability(model: keras.Model, masks: Masks | None = None) -> Reachability:
    """Propagates the binary shadow forwards (accessibility) and backwards (co-accessibility).

    Args:
        model: A functional model of supported layers.
        masks: Candidate masks by mask path (default: the model's current masks).

    Returns:
        A `Reachability` with boolean shadows and, for every masked weight, a boolean array of
        the entries that lie on an input-to-output path if kept.
    """
    masks = masks or {}
    steps = _graph(model)
    accessible = {id(t): np.ones(t.shape[1:], np.float32) for t in model.inputs}
    for layer, inputs, outputs in steps:
        result = rule_for(layer).forward(layer, [accessible[id(t)] for t in inputs], masks)
        accessible[id(outputs[0])] = (np.asarray(result) > 0).astype(np.float32)
    coaccessible = {id(t): np.ones(t.shape[1:], np.float32) for t in model.outputs}
    for layer, inputs, outputs in reversed(steps):
        out_co = coaccessible.get(id(outputs[0]))
        if out_co is None:
            out_co = np.zeros(outputs[0].shape[1:], np.float32)
        shapes = [tuple(t.shape[1:]) for t in inputs]
        for tensor, co in zip(inputs, rule_for(layer).backward(layer, out_co, shapes, masks)):
            previous = coaccessible.get(id(tensor), 0.0)
            coaccessible[id(tensor)] = ((previous + np.asarray(co)) > 0).astype(np.float32)
    used = {}
    for layer, inputs, outputs in steps:
        rule = rule_for(layer)
        if rule.used is not None:
            entries = rule.used(layer, accessible[id(inputs[0])], coaccessible[id(outputs[0])],
                                masks)
            used.update({path: value > 0 for path, value in entries.items()})
    return Reachability(
        {k: v > 0 for k, v in accessible.items()},
        {k: v > 0 for k, v in coaccessible.items()},
        used,
        {layer.name: (id(inputs[0]), id(outputs[0])) for layer, inputs, outputs in steps},
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
                          include_adjacency: bool = False) -> float:
    """Fraction of kept prunable weights that lie on no input-to-output path."""
    masks = {**current_masks(model), **(masks or {})}
    used = reachability(model, masks).used
    paths = [w.mask.path for w in prunable_weights(model, include_adjacency)]
    kept = sum(float(masks[p].sum()) for p in paths)
    wasted = sum(float((masks[p] * ~used[p]).sum()) for p in paths)
    return wasted / kept if kept else 0.0
