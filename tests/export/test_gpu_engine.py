"""LiteRT's GPU engine: every model the package builds runs on it, GPU only, and the export
refuses a file the engine runs wrongly. Skipped, with the reason, where the engine is absent."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gcnprune import models
from keras_gcnprune.export import (
    ExportError,
    GpuEngineUnavailable,
    check_gpu_engine,
    compact,
    export_tflite,
    gpu_engine_missing,
)
from keras_gcnprune.export.gpu_engine import sample_inputs
from keras_gcnprune.pruning import assign_masks, topologically_consistent_masks
from tests.export.test_gpu import OBSERVED, convert, needs_engine
from tests.families import FAMILIES

BUILDERS = {
    **FAMILIES,
    "attention_gcn, 2 segments": lambda: models.build("attention_gcn", "sbu_pair",
                                                      num_classes=8, frames=16, segments=2),
}


def prepared(name, pruning):
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    if pruning == "dense":
        return model
    assign_masks(model, topologically_consistent_masks(model, 0.95))
    return compact(model) if pruning == "compacted" else model


# A pruned model has the ops and shapes of its dense one (its zeros are weights like any
# other), so only its float file is in the default run; the quantized ones are marked slow.
PRUNINGS_AND_QUANTIZATIONS = [
    pytest.param(pruning, quantization,
                 marks=[pytest.mark.slow] if (pruning, quantization) in
                 {("pruned", "fp16"), ("pruned", "int8")} else [])
    for pruning in ("dense", "pruned", "compacted") for quantization in ("none", "fp16", "int8")
]


@needs_engine
@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("pruning, quantization", PRUNINGS_AND_QUANTIZATIONS)
def test_every_built_model_runs_gpu_only_on_the_engine(tmp_path, name, pruning, quantization):
    model = prepared(name, pruning)
    samples = np.random.default_rng(1).standard_normal(
        (48, *model.input_shape[1:])).astype("float32")
    report = export_tflite(model, tmp_path / "m.tflite", quantization=quantization,
                           representative=samples if quantization == "int8" else None,
                           gpu_engine="require")
    assert report.gpu_findings == []
    assert report.gpu_engine.status == "runs", str(report.gpu_engine)
    assert report.gpu_engine.max_abs_diff <= report.gpu_engine.tolerance
    assert report.gpu_engine.samples == report.checked_samples


class BroadcastMatmul(keras.layers.Layer):
    """A 4-D matmul whose right operand broadcasts a batch dimension: wrong on the engine."""

    def build(self, input_shape):
        self.right = self.add_weight(shape=(1, 1, 4, 5), initializer="random_normal")

    def call(self, x):
        return keras.ops.reshape(keras.ops.matmul(keras.ops.reshape(x, (-1, 2, 3, 4)),
                                                  self.right), (-1, 30))


def broadcast_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2, 3, 4))
    return keras.Model(inputs, BroadcastMatmul()(inputs))


@needs_engine
def test_an_export_the_engine_runs_wrongly_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ExportError, match="failed its check on LiteRT's GPU engine"):
        export_tflite(broadcast_model(), tmp_path / "m.tflite")
    assert list(tmp_path.iterdir()) == []
    report = export_tflite(broadcast_model(), tmp_path / "m.tflite", gpu_engine="off")
    assert report.gpu_engine is None and "gpu_engine='off'" in report.gpu_engine_skipped
    assert any("batch dimensions broadcast" in f for f in report.gpu_findings)


@needs_engine
def test_a_crash_of_the_engine_is_a_refusal_not_a_crash_of_the_caller():
    data = convert(lambda x: tf.reshape(tf.cumsum(tf.reshape(x, (1, 2, 3, 4)), axis=-1),
                                        (1, 24)), (1, 24))
    check = check_gpu_engine(data)
    assert check.status == "refused"
    assert "GPU runtime crashed (signal" in check.messages[0]


@needs_engine
def test_bytes_and_paths_give_the_same_check(tmp_path):
    data = convert(OBSERVED["dense and softmax"][0], (1, 24))
    (tmp_path / "m.tflite").write_bytes(data)
    inputs = sample_inputs(data, samples=5)
    by_bytes = check_gpu_engine(data, inputs)
    by_path = check_gpu_engine(tmp_path / "m.tflite", inputs)
    assert by_bytes == by_path and by_bytes.samples == 5


def test_sample_inputs_have_the_model_input_shape_without_its_batch():
    data = convert(lambda x: x * 2.0, (1, 3, 4))
    (array,) = sample_inputs(data, samples=6)
    assert array.shape == (6, 3, 4) and array.dtype == np.float32
    np.testing.assert_array_equal(array, sample_inputs(data, samples=6)[0])


def test_without_the_engine_auto_skips_with_the_reason_and_require_refuses(
        tmp_path, monkeypatch):
    from keras_gcnprune.export import convert as convert_module

    monkeypatch.setattr(convert_module, "gpu_engine_missing",
                        lambda: "no Vulkan device was found. (test)")
    model = FAMILIES["attention_gcn"]()
    report = export_tflite(model, tmp_path / "m.tflite")
    assert report.gpu_engine is None
    assert report.gpu_engine_skipped == "no Vulkan device was found. (test)"
    with pytest.raises(GpuEngineUnavailable, match="gpu_engine='require'"):
        export_tflite(model, tmp_path / "n.tflite", gpu_engine="require")
    assert not (tmp_path / "n.tflite").exists()


def test_gpu_engine_missing_names_what_to_install(monkeypatch):
    from keras_gcnprune.export import gpu_engine

    monkeypatch.setattr(gpu_engine.ctypes.util, "find_library", lambda name: None)
    assert "libvulkan1" in gpu_engine_missing()
    with pytest.raises(GpuEngineUnavailable, match="cannot run here"):
        check_gpu_engine(convert(lambda x: x, (1, 4)))
