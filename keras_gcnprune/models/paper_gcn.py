"""The seed papers' baseline GCN: chunk means of each joint's trajectory, three blocks of a
single-head graph attention and a graph convolution, a fully connected layer, the classifier.

As H. Sahbi describes it for the topologically consistent and multi-rate pruning papers
(and "Active Learning for GCN-based Action Recognition", arXiv 2511.21625): each joint's
trajectory is cut into 4 temporal chunks whose mean coordinates are concatenated (12 input
features per joint for 3-D joints); edges are the skeleton's. Its training regime is the
`paper` recipe of `benchmarks/dense_quality.py`.
"""

from __future__ import annotations

import keras

from keras_gcnprune.graphs import build_adjacency, get_layout
from keras_gcnprune.layers import GraphAttention, GraphConv, MaskedDense
from keras_gcnprune.models.attention_gcn import fold_time_into_channels

WIDTHS = {"filters": 8, "fc_units": 64}
WIDTH_VARIANTS: dict[str, dict] = {}


def scaled_widths(factor: float, options: dict, fixed: tuple[str, ...] = ()) -> dict:
    """`options` with the blocks' filters and the fully connected units (given or default)
    multiplied by `factor`, rounded, at least 1 (those in `fixed` kept)."""
    return {**options, **{key: max(1, round(options.get(key, default) * factor))
                          for key, default in WIDTHS.items() if key not in fixed}}


def chunk_means(inputs, chunks: int):
    """(N, T, V, C) -> (N, 1, V, chunks * C): the mean coordinates of each of `chunks` equal
    temporal chunks of every joint's trajectory, concatenated as the joint's features."""
    frames = inputs.shape[1]
    if frames % chunks:
        raise ValueError(f"frames={frames} is not a multiple of chunks={chunks}: use frames "
                         f"that {chunks} divides (Preprocessing(frames=...)).")
    x = keras.layers.AveragePooling2D((frames // chunks, 1), name="chunk_means")(inputs)
    return fold_time_into_channels(x, 1)


def paper_gcn(
    layout,
    num_classes: int,
    frames: int,
    channels: int = 3,
    chunks: int = 4,
    blocks: int = 3,
    filters: int = WIDTHS["filters"],
    fc_units: int = WIDTHS["fc_units"],
    strategy: str = "uniform",
    dropout: float = 0.0,
    freeze_pruned: bool = False,
    name: str = "paper_gcn",
) -> keras.Model:
    """Builds the seed papers' baseline GCN (see the module docstring).

    Args:
        layout: Skeleton layout (name, dict or `SkeletonLayout`).
        num_classes: Number of classes (the model outputs logits).
        frames: Frames T of the input `(T, V, channels)`, a multiple of `chunks`.
        channels: Input channels per joint.
        chunks: Temporal chunks whose mean coordinates are each joint's features.
        blocks: Blocks of a single-head graph attention followed by a graph convolution.
        filters: Output channels of every attention and graph convolution (the papers use 8
            on SBU, 16 on FPHA).
        fc_units: Units of the fully connected layer before the classifier.
        strategy: Adjacency strategy of the graph convolutions (`"uniform"`: the skeleton's
            edges and self-loops, as the papers).
        dropout: Dropout rate before the classifier (the papers use none).
        freeze_pruned: Keep pruned weights at zero after each optimizer step.
        name: Model name.

    Returns:
        A functional `keras.Model` mapping `(N, T, V, channels)` to `(N, num_classes)` logits.

    Example:
        >>> model = paper_gcn("sbu_pair", num_classes=8, frames=32)
        >>> model.output_shape
        (None, 8)
    """
    if blocks < 1:
        raise ValueError(f"blocks must be at least 1, got {blocks}.")
    layout = get_layout(layout)
    common = {"freeze_pruned": freeze_pruned}
    inputs = keras.Input((frames, layout.num_joints, channels), name="skeleton")
    x = chunk_means(inputs, chunks)
    for index in range(1, blocks + 1):
        x = GraphAttention(1, filters, build_adjacency(layout, "uniform"),
                           name=f"block{index}_attention", **common)(x)
        x = keras.layers.ReLU(name=f"block{index}_attention_relu")(x)
        x = GraphConv(filters, build_adjacency(layout, strategy), name=f"block{index}_gcn",
                      **common)(x)
        x = keras.layers.ReLU(name=f"block{index}_gcn_relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = MaskedDense(fc_units, name="fc", **common)(x)
    x = keras.layers.ReLU(name="fc_relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = MaskedDense(num_classes, name="classifier", **common)(x)
    return keras.Model(inputs, outputs, name=name)
