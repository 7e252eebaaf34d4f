"""Accessibility and co-accessibility of a masked network (docs/design.md).

The network's binary shadow replaces every kernel by its mask, every adjacency by its support,
biases and normalisation shifts by zero and activations by the identity. Ones fed at the inputs
mark the *accessible* neurons; ones sent back from the logits mark the *co-accessible* ones.
Shadows are arrays over each sample's whole tensor (frames x joints x channels), so the result is
exact through graph aggregations, strides, reshapes and permutations. A kept weight is
*consistent* (on an input-to-output path) when some position links an accessible input neuron to
a co-accessible output neuron through it.

Every masked layer states its own rules (`MaskedLayer.shadow_forward`, `shadow_backward`,
`shadow_used`), in the two algebras of `keras_gcnprune.layers.shadow`: `EXACT`, which the
selection and the reports use, and `SOFT`, which the training-time supervision runs in the graph
of every training step (see `supervision.py`). This module holds the rules of the layers that
only move, merge or pass neurons, and the propagation over a functional model.

Supported layers: the package's masked layers, and InputLayer, BatchNormalization, activations,
Dropout, Reshape, Flatten, Permute, Add, Concatenate, MaxPooling1D/2D, AveragePooling1D/2D,
GlobalAveragePooling1D/2D and GlobalMaxPooling1D/2D. Any other layer raises an error that names
it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.layers.shadow import (
    EXACT,
    Shadow,
    batch_of_one,
    batch_shape,
    conv2d_strides,
    sample_of,
)
from keras_gcnprune.pruning.masks import masked_layers, prunable_weights
from keras_gcnprune.pruning.stock import stock_kind

Masks = dict[str, np.ndarray]  # mask variable path -> 0/1 array


def current_masks(model: keras.Model) -> Masks:
    """The masks of every masked weight of `model`, by mask path."""
    return {
        w.mask.path: w.mask.numpy() for w in prunable_weights(model)
    }


@dataclass(frozen=True)
class Rule:
    """A layer's reachability rules, `forward(layer, inputs, shadow)`,
    `backward(layer, out_co, in_shapes, shadow)` and `used(layer, acc_in, co_out, shadow)`
    (None for layers without masked weights)."""

    forward: Callable
    backward: Callable
    used: Callable | None = None


MASKED_RULE = Rule(
    lambda layer, inputs, shadow: layer.shadow_forward(inputs, shadow),
    lambda layer, out_co, in_shapes, shadow: layer.shadow_backward(out_co, in_shapes, shadow),
    lambda layer, acc_in, co_out, shadow: layer.shadow_used(acc_in, co_out, shadow),
)


def _structural_rule(layer) -> Rule:
    """Rules of the layers that only move, merge or pass neurons."""
    kind = stock_kind(layer)
    if kind == "identity":
        return Rule(lambda layer_, x, s: x[0], lambda layer_, co, shapes, s: [co])
    if kind in ("reshape", "flatten"):
        return Rule(
            lambda layer_, x, s: s.xp.reshape(x[0], tuple(layer_.output.shape[1:])),
            lambda layer_, co, shapes, s: [s.xp.reshape(co, shapes[0])],
        )
    if kind == "permute":
        order = [d - 1 for d in layer.dims]
        return Rule(
            lambda layer_, x, s: s.xp.transpose(x[0], order),
            lambda layer_, co, shapes, s: [s.xp.transpose(co, list(np.argsort(order)))],
        )
    if kind == "add":
        return Rule(lambda layer_, x, s: sum(x), lambda layer_, co, shapes, s: [co] * len(shapes))
    if kind == "concatenate":
        return Rule(_concat_forward, _concat_backward)
    if kind == "window_pooling":
        return Rule(_window_pool_forward, _window_pool_backward)
    if kind == "global_pooling" and not layer.keepdims:
        return Rule(
            lambda layer_, x, s: s.xp.sum(s.xp.reshape(x[0], (-1, x[0].shape[-1])), axis=0),
            lambda layer_, co, shapes, s: [s.xp.broadcast_to(co, shapes[0])],
        )
    raise ValueError(
        f"Layer {layer.name!r} ({type(layer).__name__}) is not supported by the accessibility "
        "analysis; supported: the keras_gcnprune layers, BatchNormalization, activations, "
        "Dropout, Reshape, Flatten, Permute, Add, Concatenate, max and average pooling and "
        "global pooling."
    )


# A pooling window passes a neuron's paths to every output whose window holds it: the shadow's
# pooling is a convolution, channel by channel, with a window of ones (a sum, whether the layer
# takes the maximum or the mean), and its co-accessibility that convolution's input gradient. A
# 1-D pooling runs as a 2-D one of height 1.
def _window_pool_parts(layer, channels: int):
    if layer.data_format != "channels_last":
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) pools "
                         f"{layer.data_format}; the accessibility analysis needs channels_last.")
    rank = len(layer.pool_size)
    window = (1, *layer.pool_size) if rank == 1 else tuple(layer.pool_size)
    kernel = np.ones((*window, 1, 1), np.float32) * np.eye(channels, dtype=np.float32)
    return rank, kernel, {"strides": conv2d_strides(tuple(layer.strides)),
                          "padding": layer.padding.upper()}


def _window_pool_forward(layer, inputs, shadow):
    rank, kernel, options = _window_pool_parts(layer, inputs[0].shape[-1])
    pooled = tf.nn.conv2d(batch_of_one(inputs[0], rank), kernel, **options)
    return sample_of(pooled, rank, shadow)


def _window_pool_backward(layer, out_co, in_shapes, shadow):
    rank, kernel, options = _window_pool_parts(layer, out_co.shape[-1])
    back = tf.nn.conv2d_transpose(batch_of_one(out_co, rank), kernel,
                                  batch_shape(in_shapes[0], rank), **options)
    return [sample_of(back, rank, shadow)]


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
    """A masked layer's own rules (its pruning protocol), or a structural layer's."""
    if isinstance(layer, MaskedLayer):
        return MASKED_RULE
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
    """`(layer, input tensors, output tensors)` of every layer of a functional or Sequential
    model, in execution order, nested models flattened into their layers (their inputs and
    outputs become the tensors they were called on and gave); each layer must be called once."""
    model = _functional(model)
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
        inputs, outputs = list(node.input_tensors), list(node.output_tensors)
        if isinstance(operation, keras.Model):
            steps += _nested_steps(operation, inputs, outputs)
        else:
            steps.append((operation, inputs, outputs))
    return steps


def _functional(model) -> keras.Model:
    """The functional graph of a model (a built Sequential runs one)."""
    if isinstance(model, keras.Sequential):
        model = getattr(model, "_functional", None) or model
    if not isinstance(model, keras.Model) or not hasattr(model, "operations"):
        raise ValueError("Accessibility needs a functional or Sequential keras.Model, built "
                         "with an Input.")
    return model


def _nested_steps(model: keras.Model, inputs: list, outputs: list) -> list[tuple]:
    """A nested model's steps, its own input and output tensors replaced by the outer ones."""
    inner, model = graph_steps(model), _functional(model)
    outer = {id(t): o for t, o in zip([*model.inputs, *model.outputs], [*inputs, *outputs])}
    return [(layer, [outer.get(id(t), t) for t in ins], [outer.get(id(t), t) for t in outs])
            for layer, ins, outs in inner]


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
    check_reachability_rules(model)
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


def layers_without_reachability(model: keras.Model) -> list[MaskedLayer]:
    """The masked layers of `model` whose type lists its masked weights but states no
    reachability rules (see `MaskedLayer.implements`)."""
    return [layer for layer in masked_layers(model) if not layer.implements("reachability")]


def check_reachability_rules(model: keras.Model) -> None:
    """Refuses a model with a masked layer that has no reachability rules.

    Raises:
        ValueError: naming the layer, what needs the rules and what works without them.
    """
    missing = layers_without_reachability(model)
    if missing:
        layer = missing[0]
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) lists its masked weights but states "
            "no reachability rules (shadow_forward, shadow_backward, shadow_used of "
            "keras_gcnprune.layers.MaskedLayer): TCP, consistent extraction, connectivity "
            "reports and compaction need them; magnitude pruning, and srmp or mrmp with "
            "ranked extraction, do not.")


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
