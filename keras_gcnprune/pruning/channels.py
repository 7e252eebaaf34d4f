"""Channel groups of a functional model, and blocks of whole channels to prune within.

Tensors joined by layers that pass channels through unchanged (batch norm, activations,
dropout, residual additions, pooling, and masked layers whose `channel_coupling()` is `"same"`,
such as a depthwise convolution) form one *channel group*: removing a channel removes it from
every tensor of its group. Groups that touch the model's inputs or outputs, a Reshape, Permute
or Concatenate, a masked layer whose coupling is `"fixed"`, or a layer outside the supported
ones cannot be narrowed. Compaction (`keras_gcnprune.pruning.compact`) removes dead channels
group by group; block selection (`channel_block`) confines pruning to the strongest channels of
every narrowable group, so that the other channels die and compaction removes them.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_gcnprune.layers import MaskedLayer
from keras_gcnprune.pruning.stock import BARRIER_KINDS, PASSING_KINDS, layers_of
from keras_gcnprune.pruning.topology import Masks, graph_steps, reachability

PASS_THROUGH = layers_of(*PASSING_KINDS)
BARRIERS = layers_of(*BARRIER_KINDS)
# Masked layers narrow through their pruning protocol; any other layer fixes its groups.
KNOWN = (*PASS_THROUGH, MaskedLayer, *layers_of("flatten"))


class ChannelGroups:
    """Union-find over the tensors of a model, and the groups that must keep every channel.

    Args:
        model: A functional model.
        steps: `(layer, inputs, outputs)` of every layer (default: walked from `model`).
    """

    def __init__(self, model: keras.Model, steps=None) -> None:
        self.steps = steps or graph_steps(model)
        self.parent: dict[int, int] = {}
        for layer, inputs, outputs in self.steps:
            for tensor in [*inputs, *outputs]:
                self.find(id(tensor))
            if isinstance(layer, PASS_THROUGH) or _coupling(layer) == "same":
                for tensor in inputs:
                    self._join(id(tensor), id(outputs[0]))
        self.fixed = {self.find(id(t)) for t in [*model.inputs, *model.outputs]}
        for layer, inputs, outputs in self.steps:
            if (isinstance(layer, BARRIERS) or not isinstance(layer, KNOWN)
                    or _coupling(layer) == "fixed"):
                self.fixed |= {self.find(id(t)) for t in [*inputs, *outputs]}

    def find(self, key: int) -> int:
        """The group of a tensor id."""
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def _join(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def narrowable(self, tensor) -> bool:
        """Whether channels of `tensor`'s group can be removed."""
        return self.find(id(tensor)) not in self.fixed


def _coupling(layer) -> str:
    return layer.channel_coupling() if isinstance(layer, MaskedLayer) else "independent"


def _out_channel_broadcast(weight, keep: np.ndarray) -> np.ndarray:
    """A kernel-shaped 0/1 array: 1 on the entries whose output channel is kept."""
    shape = [weight.kernel.shape[axis] for axis in weight.out_axes]
    keep = keep.reshape(shape)
    for axis in range(len(weight.kernel.shape)):
        if axis not in weight.out_axes:
            keep = np.expand_dims(keep, axis)
    return np.broadcast_to(keep, weight.kernel.shape).astype(np.float32)


def _channel_kernels(groups: ChannelGroups):
    """Yields every kernel that writes its layer's output channels (`output_kernels`), with the
    layer and the tensor it writes."""
    for layer, _, outputs in groups.steps:
        if isinstance(layer, MaskedLayer):
            for weight in layer.output_kernels():
                yield layer, weight, outputs[0]


def _head_first(scores: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """Channels ordered head by head, strongest head first, strongest channel first within:
    a head's adjacency stays in a compacted model as long as one of its channels does."""
    head_scores = scores @ heads
    rank = np.argsort(np.argsort(-head_scores, kind="stable"), kind="stable")
    return np.lexsort((-scores, rank[heads.argmax(axis=1)]))


def _channel_orders(groups: ChannelGroups, scores) -> dict[int, np.ndarray]:
    """Channels of every narrowable group, strongest first: by the summed scores of the
    weights entering them, head by head where a layer with heads (`head_of_channels`) writes
    the group."""
    totals: dict[int, np.ndarray] = {}
    heads: dict[int, np.ndarray] = {}
    for layer, weight, output in _channel_kernels(groups):
        if groups.narrowable(output):
            key = groups.find(id(output))
            totals[key] = totals.get(key, 0.0) + weight.connections(
                scores[weight.mask.path]).sum(axis=0)
            if layer.head_of_channels() is not None:
                heads[key] = layer.head_of_channels()
    return {key: _head_first(values, heads[key]) if key in heads else
            np.argsort(-values, kind="stable") for key, values in totals.items()}


def channel_block(model: keras.Model, scores: dict[str, np.ndarray], target: int,
                  density: float) -> Masks:
    """Masks of the smallest block of whole channels that holds `target / density` weights.

    Every narrowable channel group keeps the same fraction of its channels (at least one),
    those whose incoming weights score highest (graph attention channels head by head, so that
    few heads and their adjacencies stay); a kernel weight is in the block when its output
    channel is kept, a scored learned-adjacency entry always, and either counts when it lies
    on an input-to-output path of the block. The fraction is the smallest (by bisection)
    whose block counts `target / density` weights.

    Args:
        model: A functional model of supported layers.
        scores: Score of every entry to select among, by mask path: the channel kernels', and
            the learned adjacencies' when they are pruned too.
        target: Weights the pruned network keeps.
        density: Fraction of the block's weights that `target` should fill, in (0, 1].

    Returns:
        0/1 block masks by mask path (all ones where no channel can be removed).
    """
    groups = ChannelGroups(model)
    order = _channel_orders(groups, scores)

    adjacencies = {path: np.ones_like(score) for path, score in scores.items()
                   if path not in {w.mask.path for _, w, _ in _channel_kernels(groups)}}

    def block_at(fraction: float) -> Masks:
        masks = dict(adjacencies)  # whole; only the kept channels' parts lie on paths
        for _, weight, output in _channel_kernels(groups):
            key = groups.find(id(output))
            keep = np.ones(int(np.prod([weight.kernel.shape[a] for a in weight.out_axes])))
            if key in order:
                keep[:] = 0.0
                keep[order[key][:max(1, math.ceil(fraction * keep.size))]] = 1.0
            masks[weight.mask.path] = _out_channel_broadcast(weight, keep)
        return masks

    def counted(masks: Masks) -> int:
        used = reachability(model, masks).used
        return int(sum((masks[path] * used[path]).sum() for path in masks))

    wanted, low, high = target / density, 0.0, 1.0
    for _ in range(12):
        middle = (low + high) / 2
        low, high = (low, middle) if counted(block_at(middle)) >= wanted else (middle, high)
    return block_at(high)
