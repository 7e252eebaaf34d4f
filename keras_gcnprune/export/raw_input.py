"""Models that take raw joint coordinates and can end in probabilities, for apps.

An app that feeds a model its preprocessed input must reimplement the package's preprocessing,
and small slips there cost most of the accuracy (no scaling, swapped streams, a flipped axis,
centring every frame). `with_raw_input` puts the preprocessing in the graph instead: the
exported model takes a window of T frames of raw coordinates as the sensor gives them.
"""

from __future__ import annotations

import keras

from keras_gcnprune.data import Preprocessing
from keras_gcnprune.export.convert import PROBABILITIES_NAME
from keras_gcnprune.layers import SkeletonPreprocessing


def with_raw_input(model: keras.Model, preprocessing: Preprocessing, layout,
                   axes: str | None = None, probabilities: bool = False) -> keras.Model:
    """The model behind its own preprocessing: raw coordinates in, logits or probabilities out.

    Args:
        model: A model whose input is `preprocessing`'s output, `(batch, T, V, C * streams)`.
        preprocessing: The preprocessing it was trained with (its `frames` is the window).
        layout: The skeleton layout of the training data.
        axes: For each axis of the training data, the sensor's axis it is read from and its
            sign, for example `"x,-y,z"` for image coordinates (y down) when the training
            data's y points up; None (default) reads every axis as it is.
        probabilities: End in a softmax layer named `probabilities`.

    Returns:
        A functional model on `(batch, T, V, C)` raw coordinates (all-zero joints are missing);
        a window of another length must be resampled to T first (see `data.resample`).

    Example:
        >>> from keras_gcnprune import models
        >>> plain = models.build("stgcn", "sbu", num_classes=8, frames=16)
        >>> with_raw_input(plain, Preprocessing(frames=16), "sbu").input_shape
        (None, 16, 15, 3)
    """
    _, frames, joints, channels = model.input_shape
    if frames != preprocessing.frames or channels % len(preprocessing.streams):
        raise ValueError(
            f"Model {model.name!r} takes {frames} frames of {channels} channels, which "
            f"preprocessing {preprocessing} does not produce ({preprocessing.frames} frames, "
            f"a multiple of {len(preprocessing.streams)} channels).")
    raw = keras.Input((frames, joints, channels // len(preprocessing.streams)), name="skeleton")
    prepared = SkeletonPreprocessing(layout, preprocessing.centre, preprocessing.scale,
                                     preprocessing.streams, axes,
                                     name="skeleton_preprocessing")(raw)
    return _classifier(raw, model(prepared), probabilities, model.name)


def _classifier(inputs, logits, probabilities: bool, name: str) -> keras.Model:
    outputs = keras.layers.Softmax(name=PROBABILITIES_NAME)(logits) if probabilities else logits
    return keras.Model(inputs, outputs, name=name)


def with_probabilities(model: keras.Model) -> keras.Model:
    """The model followed by a softmax layer named `probabilities` (the export's output name).

    Example:
        >>> from keras_gcnprune import models
        >>> plain = models.build("stgcn", "sbu", num_classes=8, frames=16)
        >>> with_probabilities(plain).layers[-1].name
        'probabilities'
    """
    inputs = keras.Input(model.input_shape[1:], name="skeleton")
    return _classifier(inputs, model(inputs), True, model.name)
