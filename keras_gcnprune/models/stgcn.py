"""ST-GCN-style network: stacked graph conv + temporal conv blocks with residuals."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_gcnprune.graphs import build_adjacency, get_layout
from keras_gcnprune.layers import GraphConv, MaskedDense, TemporalConv


def _input_normalisation(inputs, momentum: float):
    """Batch norm over joints and channels together (ST-GCN's data_bn), kept rank <= 4."""
    frames, joints, channels = inputs.shape[1:]
    x = keras.layers.Reshape((frames, joints * channels), name="data_flatten")(inputs)
    x = keras.layers.BatchNormalization(momentum=momentum, name="data_bn")(x)
    return keras.layers.Reshape((frames, joints, channels), name="data_unflatten")(x)


def _block(x, adjacency, width: int, stride: int, kernel: int, dropout: float, index: int,
           learnable_adjacency: bool, freeze_pruned: bool, momentum: float):
    prefix = f"block{index}"
    in_width = x.shape[-1]
    if in_width == width and stride == 1:
        residual = x
    else:
        residual = TemporalConv(
            width, 1, strides=stride, name=f"{prefix}_residual", freeze_pruned=freeze_pruned
        )(x)
        residual = keras.layers.BatchNormalization(
            momentum=momentum, name=f"{prefix}_residual_bn"
        )(residual)
    y = GraphConv(
        width, adjacency, learnable_adjacency=learnable_adjacency,
        name=f"{prefix}_gcn", freeze_pruned=freeze_pruned,
    )(x)
    y = keras.layers.BatchNormalization(momentum=momentum, name=f"{prefix}_gcn_bn")(y)
    y = keras.layers.ReLU(name=f"{prefix}_gcn_relu")(y)
    y = TemporalConv(
        width, kernel, strides=stride, name=f"{prefix}_tcn", freeze_pruned=freeze_pruned
    )(y)
    y = keras.layers.BatchNormalization(momentum=momentum, name=f"{prefix}_tcn_bn")(y)
    if dropout:
        y = keras.layers.Dropout(dropout, name=f"{prefix}_dropout")(y)
    y = keras.layers.Add(name=f"{prefix}_add")([y, residual])
    return keras.layers.ReLU(name=f"{prefix}_relu")(y)


WIDTHS = (32, 32, 64, 64)
STRIDES = (1, 1, 2, 1)
# shallower shapes: the default's last blocks (scaled_widths drops the first widths)
WIDTH_VARIANTS: dict[str, dict] = {f"blocks{depth}": {"strides": STRIDES[-depth:]}
                                   for depth in (3, 2)}


def scaled_widths(factor: float, options: dict, fixed: tuple[str, ...] = ()) -> dict:
    """`options` with every block's width (given or default) multiplied by `factor`,
    rounded, at least 1. Strides are never scaled (`fixed` changes nothing: the widths are one
    option); where `options` gives fewer strides than widths (a shape of `WIDTH_VARIANTS`),
    the model keeps the last blocks: their widths are the last ones."""
    widths = tuple(options.get("widths", WIDTHS))
    depth = len(options.get("strides", STRIDES))
    if depth < len(widths):
        widths = widths[-depth:]
    return {**options, "widths": tuple(max(1, round(w * factor)) for w in widths)}


def stgcn(
    layout,
    num_classes: int,
    frames: int,
    channels: int = 3,
    widths: Sequence[int] = WIDTHS,
    strides: Sequence[int] = STRIDES,
    temporal_kernel: int = 9,
    strategy: str = "spatial",
    learnable_adjacency: bool = True,
    dropout: float = 0.1,
    batch_norm_momentum: float = 0.9,
    freeze_pruned: bool = False,
    name: str = "stgcn",
) -> keras.Model:
    """Builds an ST-GCN-style network (small by default, sized for a phone).

    Args:
        layout: Skeleton layout (name, dict or `SkeletonLayout`).
        num_classes: Number of classes (the model outputs logits).
        frames: Frames T of the input `(T, V, channels)`.
        channels: Input channels per joint.
        widths: Output channels of each block.
        strides: Temporal stride of each block (same length as `widths`).
        temporal_kernel: Temporal kernel size of each block.
        strategy: Adjacency strategy of the graph convolutions.
        learnable_adjacency: Learn an offset to each adjacency subset.
        dropout: Dropout rate inside each block.
        batch_norm_momentum: Momentum of the moving statistics of every batch norm. 0.9, as in
            the reference ST-GCN (PyTorch momentum 0.1): with Keras' 0.99 the statistics lag
            behind the weights on small datasets, and inference accuracy collapses (SBU fold 1,
            40 epochs: 29% against 64% with a fixed adjacency).
        freeze_pruned: Keep pruned weights at zero after each optimizer step.
        name: Model name.

    Returns:
        A functional `keras.Model` mapping `(N, T, V, channels)` to `(N, num_classes)` logits.

    Example:
        >>> model = stgcn("ntu_rgbd", num_classes=60, frames=32, widths=(16, 32), strides=(1, 2))
        >>> model.output_shape
        (None, 60)
    """
    if len(widths) != len(strides) or not widths:
        raise ValueError(
            f"widths {tuple(widths)} and strides {tuple(strides)} must be non-empty and of the "
            "same length (one entry per block)."
        )
    layout = get_layout(layout)
    adjacency = build_adjacency(layout, strategy)
    inputs = keras.Input((frames, layout.num_joints, channels), name="skeleton")
    x = _input_normalisation(inputs, batch_norm_momentum)
    for index, (width, stride) in enumerate(zip(widths, strides), start=1):
        x = _block(x, adjacency, int(width), int(stride), temporal_kernel, dropout, index,
                   learnable_adjacency, freeze_pruned, batch_norm_momentum)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = MaskedDense(num_classes, name="classifier", freeze_pruned=freeze_pruned)(x)
    return keras.Model(inputs, outputs, name=name)
