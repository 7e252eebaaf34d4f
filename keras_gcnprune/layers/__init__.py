"""Keras layers for skeleton graph convolution whose kernels carry pruning masks, and the
prunable forms of stock Dense and convolution layers."""

import keras_gcnprune.backend  # noqa: F401  (first: it refuses a backend other than TensorFlow)
from keras_gcnprune.layers.conv import (
    MaskedConv,
    MaskedConv1D,
    MaskedConv2D,
    MaskedDepthwiseConv2D,
    MaskedSeparableConv2D,
)
from keras_gcnprune.layers.dense import MaskedDense
from keras_gcnprune.layers.graph_attention import GraphAttention
from keras_gcnprune.layers.graph_conv import GraphConv
from keras_gcnprune.layers.masked import MaskConstraint, MaskedLayer, MaskedWeight
from keras_gcnprune.layers.offset import ConstantOffset
from keras_gcnprune.layers.skeleton_preprocessing import SkeletonPreprocessing
from keras_gcnprune.layers.streams import SelectStreams
from keras_gcnprune.layers.temporal_conv import TemporalConv

__all__ = [
    "ConstantOffset",
    "GraphAttention",
    "GraphConv",
    "MaskConstraint",
    "MaskedConv",
    "MaskedConv1D",
    "MaskedConv2D",
    "MaskedDense",
    "MaskedDepthwiseConv2D",
    "MaskedLayer",
    "MaskedSeparableConv2D",
    "MaskedWeight",
    "SelectStreams",
    "SkeletonPreprocessing",
    "TemporalConv",
]
