"""Ready skeleton models built from the masked layers, and `build`, their one entry point."""

from __future__ import annotations

import numbers
from collections.abc import Callable

import keras

from keras_gcnprune.models.attention_gcn import attention_gcn
from keras_gcnprune.models.stgcn import stgcn

MODELS: dict[str, Callable[..., keras.Model]] = {
    "attention_gcn": attention_gcn,
    "stgcn": stgcn,
}


def build(name: str, layout, num_classes: int, frames: int, **options) -> keras.Model:
    """Builds a model by name.

    Args:
        name: `"attention_gcn"` or `"stgcn"`.
        layout: Skeleton layout (name, dict or `SkeletonLayout`).
        num_classes: Number of classes.
        frames: Frames T of the input.
        **options: Options of the model function (`channels`, widths, heads, ...).

    Returns:
        A functional `keras.Model` that outputs logits.

    Example:
        >>> from keras_gcnprune import models
        >>> models.build("attention_gcn", layout="sbu_pair", num_classes=8, frames=32).name
        'attention_gcn'
    """
    if isinstance(frames, bool) or not isinstance(frames, numbers.Integral) or frames < 1:
        raise ValueError(
            f"frames must be a positive integer, got {frames!r}: the models take a fixed window "
            "of T frames (Preprocessing(frames=T) resamples every sequence to it), because "
            "mobile GPU delegates run static shapes only.")
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[key](layout, num_classes=num_classes, frames=frames, **options)


__all__ = ["MODELS", "attention_gcn", "build", "stgcn"]
