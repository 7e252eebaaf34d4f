"""The shallow attention GCN of the pruning papers: graph attention, graph conv, classifier."""

from __future__ import annotations

import keras

from keras_gcnprune.graphs import build_adjacency, get_layout
from keras_gcnprune.layers import GraphAttention, GraphConv, MaskedDense


def fold_time_into_channels(inputs, segments: int):
    """(N, T, V, C) -> (N, segments, V, T / segments * C): each joint's trajectory as features."""
    frames, joints, channels = inputs.shape[1:]
    if frames % segments:
        raise ValueError(f"frames={frames} is not a multiple of segments={segments}.")
    x = keras.layers.Permute((2, 1, 3), name="joints_first")(inputs)
    x = keras.layers.Reshape((joints, segments, frames // segments * channels), name="segment")(x)
    return keras.layers.Permute((2, 1, 3), name="segments_first")(x)


WIDTHS = {"heads": 8, "head_channels": 8, "graph_channels": 32}
# Shapes of a narrower model besides every width scaled alike: fewer heads, wider ones.
WIDTH_VARIANTS = {"heads1": {"heads": 1}, "heads2": {"heads": 2}, "heads4": {"heads": 4}}


def scaled_widths(factor: float, options: dict, fixed: tuple[str, ...] = ()) -> dict:
    """`options` with the attention heads, head channels and graph channels (given or
    default) multiplied by `factor`, rounded, at least 1 (those in `fixed` kept): a narrower
    or wider model of the same family."""
    return {**options, **{key: max(1, round(options.get(key, default) * factor))
                          for key, default in WIDTHS.items() if key not in fixed}}


def attention_gcn(
    layout,
    num_classes: int,
    frames: int,
    channels: int = 3,
    heads: int = WIDTHS["heads"],
    head_channels: int = WIDTHS["head_channels"],
    graph_channels: int = WIDTHS["graph_channels"],
    segments: int = 1,
    strategy: str = "spatial",
    dropout: float = 0.3,
    freeze_pruned: bool = False,
    name: str = "attention_gcn",
) -> keras.Model:
    """Builds the shallow attention GCN used by the TCP and MRMP papers.

    Each joint's trajectory (its coordinates over `frames / segments` frames) is its input
    feature; a multi-head graph attention layer with learned per-head adjacencies, a graph
    convolution over the layout's adjacency subsets and a dense classifier follow.

    Args:
        layout: Skeleton layout (name, dict or `SkeletonLayout`).
        num_classes: Number of classes (the model outputs logits).
        frames: Frames T of the input `(T, V, channels)`.
        channels: Input channels per joint (3 for x, y, z; more with bone or motion streams).
        heads: Attention heads.
        head_channels: Output channels of each head.
        graph_channels: Output channels of the graph convolution.
        segments: Number of temporal segments the sequence is cut into (must divide `frames`).
        strategy: Adjacency strategy of the graph convolution.
        dropout: Dropout rate before the classifier.
        freeze_pruned: Keep pruned weights at zero after each optimizer step.
        name: Model name.

    Returns:
        A functional `keras.Model` mapping `(N, T, V, channels)` to `(N, num_classes)` logits.

    Example:
        >>> model = attention_gcn("mediapipe_hand", num_classes=10, frames=32)
        >>> model.output_shape
        (None, 10)
    """
    layout = get_layout(layout)
    common = {"freeze_pruned": freeze_pruned}
    inputs = keras.Input((frames, layout.num_joints, channels), name="skeleton")
    x = fold_time_into_channels(inputs, segments)
    x = GraphAttention(
        heads, head_channels, build_adjacency(layout, "uniform"), name="attention", **common
    )(x)
    x = keras.layers.BatchNormalization(name="attention_bn")(x)
    x = keras.layers.ReLU(name="attention_relu")(x)
    x = GraphConv(graph_channels, build_adjacency(layout, strategy), name="graph_conv", **common)(x)
    x = keras.layers.BatchNormalization(name="graph_conv_bn")(x)
    x = keras.layers.ReLU(name="graph_conv_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = MaskedDense(num_classes, name="classifier", **common)(x)
    return keras.Model(inputs, outputs, name=name)
