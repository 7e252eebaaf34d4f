"""Ready skeleton models built from the masked layers, and `build`, their one entry point."""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable

import keras

from keras_gcnprune.models import attention_gcn as _attention_gcn
from keras_gcnprune.models import paper_gcn as _paper_gcn
from keras_gcnprune.models import stgcn as _stgcn
from keras_gcnprune.models.attention_gcn import attention_gcn
from keras_gcnprune.models.ensemble import ensemble, union_of_streams
from keras_gcnprune.models.paper_gcn import paper_gcn
from keras_gcnprune.models.stgcn import stgcn

MODELS: dict[str, Callable[..., keras.Model]] = {
    "attention_gcn": attention_gcn,
    "stgcn": stgcn,
    "paper_gcn": paper_gcn,
}
WIDTH_SCALERS: dict[str, Callable[..., dict]] = {
    "attention_gcn": _attention_gcn.scaled_widths,
    "stgcn": _stgcn.scaled_widths,
    "paper_gcn": _paper_gcn.scaled_widths,
}
WIDTH_VARIANTS: dict[str, dict[str, dict]] = {
    "attention_gcn": _attention_gcn.WIDTH_VARIANTS,
    "stgcn": _stgcn.WIDTH_VARIANTS,
    "paper_gcn": _paper_gcn.WIDTH_VARIANTS,
}


def build(name: str, layout, num_classes: int, frames: int, **options) -> keras.Model:
    """Builds a model by name.

    Args:
        name: A key of `MODELS`: `"attention_gcn"`, `"stgcn"` or `"paper_gcn"`.
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
    builder = MODELS[_key(name)]
    check_options(builder, options)
    return builder(layout, num_classes=num_classes, frames=frames, **options)


# The largest count (width, heads, kernel, ...) an option may give: far above any phone model.
MAX_COUNT = 4096


def check_options(builder: Callable, options: dict) -> None:
    """Refuses options the model function does not take, and values of another type than
    its default's: a whole number in [1, `MAX_COUNT`] (or a list of them) where the default is
    one, a number where it is a float, True or False where it is a bool.

    Raises:
        ValueError: naming the option, its value and what it takes.
    """
    parameters = inspect.signature(builder).parameters
    known = [p for p in parameters if p not in ("layout", "num_classes", "frames")]
    for key, value in options.items():
        if key not in known:
            raise ValueError(f"Unknown option {key!r} for {builder.__name__}; it takes "
                             f"{known}.")
        problem = _value_problem(parameters[key].default, value)
        if problem:
            raise ValueError(f"Option {key}={value!r} of {builder.__name__}: {problem}.")


def _value_problem(default, value) -> str | None:
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "give true or false"
    if isinstance(default, numbers.Integral):
        counts = [value]
    elif isinstance(default, list | tuple) and default and \
            all(isinstance(d, numbers.Integral) for d in default):
        if not isinstance(value, list | tuple) or not value:
            return "give a non-empty list of whole numbers"
        counts = list(value)
    elif isinstance(default, float):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
            value == value and abs(value) != float("inf")
        return None if ok else "give a finite number"
    else:
        return None if isinstance(value, type(default)) else f"give a {type(default).__name__}"
    for count in counts:
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or \
                not 1 <= count <= MAX_COUNT:
            return f"give whole numbers in [1, {MAX_COUNT}]"
    return None


def _key(name: str) -> str:
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return key


def scaled_options(name: str, factor: float, options: dict | None = None,
                   fixed: tuple[str, ...] = ()) -> dict:
    """The options of a narrower (`factor < 1`) or wider model of the same family: every
    width of `options` (or its default) times `factor`, rounded, at least 1.

    Args:
        name: Model name (see `build`).
        factor: Width multiplier, positive.
        options: The model's other options, kept.
        fixed: Width options kept as `options` gives them (a shape of `width_variants`).

    Returns:
        The options for `build`.

    Example:
        >>> scaled_options("attention_gcn", 0.5)
        {'heads': 4, 'head_channels': 4, 'graph_channels': 16}
    """
    if not factor > 0:
        raise ValueError(f"factor must be positive, got {factor}.")
    return WIDTH_SCALERS[_key(name)](float(factor), dict(options or {}), tuple(fixed))


def width_variants(name: str) -> dict[str, dict]:
    """Other shapes of a narrower model of the family, by name: options to fix while
    `scaled_options` scales the widths (attention_gcn's head counts, `{"heads1": {"heads":
    1}}`; stgcn's strides of its last blocks, `{"blocks2": {"strides": (2, 1)}}`, a shallower
    model); empty when the family has one shape.

    Example:
        >>> sorted(width_variants("attention_gcn"))
        ['heads1', 'heads2', 'heads4']
        >>> sorted(width_variants("stgcn"))
        ['blocks2', 'blocks3']
    """
    return dict(WIDTH_VARIANTS[_key(name)])


__all__ = ["MODELS", "WIDTH_SCALERS", "WIDTH_VARIANTS", "attention_gcn", "build", "ensemble",
           "paper_gcn",
           "scaled_options", "stgcn", "union_of_streams", "width_variants"]
