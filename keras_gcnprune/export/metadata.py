"""What an app needs to feed an exported model: labels, skeleton, frames, preprocessing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import keras

from keras_gcnprune.data.dataset import check_class_names
from keras_gcnprune.layers import SkeletonPreprocessing
from keras_gcnprune.pruning.masks import masked_layers, prunable_weights, realized_rate

if TYPE_CHECKING:
    from keras_gcnprune.training import RunInfo


def export_metadata(model: keras.Model, run_info: RunInfo | None = None,
                    quantization: str = "none", batch_size: int = 1) -> dict:
    """Builds the metadata embedded in exported models and written beside them.

    Args:
        model: The exported Keras model.
        run_info: The training run's record (labels, layout, preprocessing, pruning); without
            it, labels are `class_0`, `class_1`, ... and the layout is unknown.
        quantization: The export's quantization.
        batch_size: The export's static batch.

    Returns:
        A JSON-serialisable dict: `labels`, `layout` (name, joint order, edges), `frames`,
        `joints`, `channels`, `input`/`output` names and shapes, `signature`, `preprocessing`,
        `pruning` (method, target and realized rate), `raw_input` (what the graph does to
        raw coordinates, or None), `quantization`, `package_version`.
    """
    from keras_gcnprune import __version__
    from keras_gcnprune.export.convert import INPUT_NAME, SIGNATURE, output_name

    _, frames, joints, channels = model.input_shape
    classes = int(model.output_shape[-1])
    labels = list(run_info.class_names) if run_info else [f"class_{i}" for i in range(classes)]
    check_class_names(labels)
    if len(labels) != classes:
        raise ValueError(f"{len(labels)} class names for a model of {classes} outputs: an app "
                         "would show every label after the first mismatch on the wrong class.")
    return {
        "package": "keras_gcnprune",
        "package_version": __version__,
        "model": model.name,
        "signature": SIGNATURE,
        "input": {"name": INPUT_NAME, "shape": [batch_size, frames, joints, channels],
                  "dtype": "float32", "axes": "batch, frames, joints, channels"},
        "output": {"name": output_name(model), "shape": [batch_size, classes],
                   "dtype": "float32"},
        "raw_input": _raw_input(model),
        "labels": labels,
        "layout": None if run_info is None else {
            key: value for key, value in run_info.layout.to_dict().items() if key != "persons"},
        "frames": frames,
        "joints": joints,
        "channels": channels,
        "preprocessing": run_info.config["preprocessing"] if run_info else None,
        "pruning": _pruning(model, run_info.pruning if run_info else None),
        "quantization": quantization,
    }


def _raw_input(model: keras.Model) -> dict | None:
    """What the model does in its graph to raw coordinates (see `with_raw_input`), or None."""
    found = [layer for layer in model.layers if isinstance(layer, SkeletonPreprocessing)]
    if not found:
        return None
    layer = found[0]
    return {"axes": layer.axes, "centre": layer.centre, "scale": layer.scale,
            "streams": list(layer.streams),
            "contract": "a window of exactly `frames` frames of raw coordinates as the sensor "
                        "gives them, read through `axes` (for each training axis, the sensor "
                        "axis and sign); a missing joint has all-zero coordinates; centring, "
                        "scaling and streams run in the graph; resample a clip of another "
                        "length to `frames` first"}


def _pruning(model: keras.Model, configured: dict | None) -> dict | None:
    if not masked_layers(model):
        return None
    return {
        "method": (configured or {}).get("method"),
        "target_rate": (configured or {}).get("rate"),
        "realized_rate": round(realized_rate(prunable_weights(model)), 6),
    }
