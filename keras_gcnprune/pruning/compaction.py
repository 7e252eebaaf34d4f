"""Compaction: removing dead channels to get a narrower dense model (docs/design.md).

A channel is *live* when, at some position (frame, joint), it is both accessible and
co-accessible. Other channels are removed from the layers that produce and consume them:

- a channel that reaches no output contributes nothing;
- a channel that no input reaches holds an input-independent value (biases and normalisation
  shifts carried forward), so what it adds to the layer that consumes it is a constant. That
  constant is computed once, through the original consumer, and added back after the narrowed
  consumer by a `ConstantOffset` (per channel, or per joint and frame where graph aggregation
  or temporal padding makes it vary).

Channels go group by group (`keras_gcnprune.pruning.channels.ChannelGroups`: the tensors joined
by batch norm, activations, residual additions and pooling keep the same channels, and groups at
the model's inputs and outputs or at a Reshape, Permute or Concatenate keep all); a Flatten
passes the kept channels of every position on to the layer it feeds. Each masked layer narrows
itself through its pruning protocol (`MaskedLayer.sliced_weights`, `narrowed_config`): a graph
attention layer keeps, in each head, the head's live channels, and loses the heads (filters and
adjacency) left without any.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_gcnprune.layers import ConstantOffset, MaskedLayer
from keras_gcnprune.pruning.channels import ChannelGroups
from keras_gcnprune.pruning.topology import graph_steps, reachability


def _channel_plan(model: keras.Model, steps) -> dict[int, np.ndarray]:
    """Kept channel indices of every tensor (by id)."""
    reach = reachability(model)
    groups = ChannelGroups(model, steps)
    tensors = {id(t): t for _, inputs, outputs in steps for t in [*inputs, *outputs]}
    live: dict[int, np.ndarray] = {}
    for key in tensors:
        root = groups.find(key)
        channels = reach.live_channels(key)
        live[root] = channels if root not in live else live[root] | channels

    def kept_channels(root: int, width: int) -> np.ndarray:
        if root in groups.fixed:
            return np.arange(width)
        kept = np.flatnonzero(live[root])
        return kept if kept.size else np.arange(1)  # a constant network keeps one

    derived = {}  # a Flatten's output group keeps each position's kept input channels
    for layer, inputs, outputs in steps:
        if isinstance(layer, keras.layers.Flatten):
            source = inputs[0]
            positions = np.arange(int(np.prod(source.shape[1:]))).reshape(source.shape[1:])
            kept = kept_channels(groups.find(id(source)), source.shape[-1])
            derived[groups.find(id(outputs[0]))] = positions[..., kept].ravel()
    plan = {}
    for key, tensor in tensors.items():
        root = groups.find(key)
        plan[key] = derived[root] if root in derived else kept_channels(root, tensor.shape[-1])
    return plan


def _sliced_weights(layer, keep_in: np.ndarray, keep_out: np.ndarray) -> list[np.ndarray]:
    """The layer's weights restricted to the kept input and output channels, in order: a
    masked layer's by its pruning protocol; batch norm's along the channels; others whole."""
    if isinstance(layer, MaskedLayer):
        return layer.sliced_weights(keep_in, keep_out)
    values = [keras.ops.convert_to_numpy(variable) for variable in layer.weights]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [value[keep_out] for value in values]
    return values


def _reference_inputs(model, steps) -> dict[str, np.ndarray]:
    """Every masked layer's input on one all-zero sample, from a single forward pass."""
    masked = [(layer.name, inputs[0]) for layer, inputs, _ in steps
              if isinstance(layer, MaskedLayer)]
    probe = keras.Model(model.input, [tensor for _, tensor in masked])
    reference = np.zeros((1, *model.input_shape[1:]), np.float32)
    values = probe(reference, training=False)
    return {name: keras.ops.convert_to_numpy(v) for (name, _), v in zip(masked, values)}


def _constant_contribution(layer, value, keep_in, keep_out):
    """What the removed channels of `layer`'s input (`value` on a reference sample) add to its
    kept outputs (None if zero)."""
    removed = np.setdiff1d(np.arange(value.shape[-1]), keep_in)
    if removed.size == 0:
        return None
    only_removed = np.zeros_like(value)
    only_removed[..., removed] = value[..., removed]
    contribution = (keras.ops.convert_to_numpy(layer(only_removed, training=False))
                    - keras.ops.convert_to_numpy(layer(np.zeros_like(value), training=False)))
    contribution = contribution[0][..., keep_out]
    if not np.any(contribution):
        return None
    for axis in range(contribution.ndim - 1):  # keep only the axes along which it varies
        first = np.take(contribution, [0], axis=axis)
        if np.allclose(contribution, first, rtol=0, atol=1e-7):
            contribution = first
    return contribution


def kept_channels(model: keras.Model) -> tuple[tuple[int, ...], ...]:
    """The channels `compact` keeps in every layer's output, in graph order: models of one
    architecture whose kept channels are the same compact to models of the same shape, and so
    of the same weights and MACs (`keras_gcnprune.reports.model_costs`)."""
    steps = graph_steps(model)
    plan = _channel_plan(model, steps)
    return tuple(tuple(plan[id(outputs[0])].tolist()) for _, _, outputs in steps)


def compact(model: keras.Model) -> keras.Model:
    """Returns a narrower model without the dead channels of `model`, with the same outputs.

    Args:
        model: A functional model of supported layers (see `keras_gcnprune.pruning.topology`),
            typically pruned with topologically consistent pruning.

    Returns:
        A new `keras.Model` with fewer filters and units where channels were dead, the
        constants of removed input-independent channels folded into `ConstantOffset` layers;
        its outputs equal `model`'s to float precision. Masks are kept (sliced), so reports and
        exports see the same kept weights.

    Example:
        >>> small = compact(pruned_model)  # doctest: +SKIP
        >>> small.count_params() < pruned_model.count_params()  # doctest: +SKIP
        True
    """
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ValueError(f"compact needs a model without nested models; {model.name!r} nests "
                         f"{nested}: build it as one functional model to compact it.")
    steps = graph_steps(model)
    plan = _channel_plan(model, steps)
    references = _reference_inputs(model, steps)
    edits = {}
    for layer, inputs, outputs in steps:
        keep_in, keep_out = plan[id(inputs[0])], plan[id(outputs[0])]
        offset = None if layer.name not in references else _constant_contribution(
            layer, references[layer.name], keep_in, keep_out)
        edits[layer.name] = (keep_in, keep_out, offset)

    def clone_layer(layer):
        if not isinstance(layer, MaskedLayer):  # batch norm's width follows its input
            return layer.__class__.from_config(layer.get_config())
        return layer.__class__.from_config(layer.narrowed_config(edits[layer.name][1]))

    def call_layer(layer, *args, **kwargs):
        result = layer(*args, **kwargs)
        offset = edits.get(layer.name, (None, None, None))[2]
        if offset is None:
            return result
        return ConstantOffset(offset, name=f"{layer.name}_folded_constants")(result)

    compacted = keras.models.clone_model(model, clone_function=clone_layer,
                                         call_function=call_layer)
    for layer, _, _ in steps:
        if layer.weights:
            keep_in, keep_out, _ = edits[layer.name]
            target = compacted.get_layer(layer.name)
            target.set_weights([value.reshape(variable.shape) for value, variable in
                                zip(_sliced_weights(layer, keep_in, keep_out), target.weights)])
    return compacted
