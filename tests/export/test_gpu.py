"""The static GPU checker and LiteRT's GPU engine, on models whose fate on the engine was seen.

Each case of `OBSERVED` was run on LiteRT's GPU engine (ai-edge-litert 2.3, SwiftShader) with
no CPU fallback and compared with the CPU runtime: it ran with the same outputs ("runs"), was
refused ("refused"), or ran with different outputs ("wrong"). The engine test runs every case
again wherever the engine is installed, so an engine release that changes its behaviour fails
here; the static test holds the checker to the same observations, so that it calls a case
refused or wrong only where the engine was seen to refuse it or get it wrong.
"""

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from keras_gcnprune.export import check_gpu, check_gpu_engine, gpu_engine_missing

ENGINE_MISSING = gpu_engine_missing()
needs_engine = pytest.mark.skipif(ENGINE_MISSING is not None,
                                  reason=f"LiteRT's GPU engine cannot run: {ENGINE_MISSING}")
RNG = np.random.default_rng(0)
KERNEL = RNG.standard_normal((24, 8)).astype("float32")
RIGHT_4D = RNG.standard_normal((1, 1, 4, 5)).astype("float32")


class Int16x8:
    """A function to convert with int16 activations and int8 weights (the 16x8 mode)."""

    def __init__(self, function):
        self.function = function


def convert(function, shape):
    """TFLite bytes of a tf.function on one float input of `shape`."""
    quantized = isinstance(function, Int16x8)
    function = function.function if quantized else function
    concrete = tf.function(function).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if quantized:
        samples = RNG.standard_normal((8, *shape)).astype("float32")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample] for sample in samples)
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter.convert()


def as_5d(x):
    return tf.reshape(x, (1, 2, 2, 2, 3))


# name: (function, input shape, what the engine did, what the static checker says)
OBSERVED = {
    "dense and softmax": (lambda x: tf.nn.softmax(tf.nn.relu(tf.matmul(x, KERNEL) + 1.0)),
                          (1, 24), "runs", None),
    "ARG_MAX to int32": (lambda x: tf.argmax(x, axis=-1, output_type=tf.int32), (1, 24),
                         "runs", None),
    "CAST": (lambda x: tf.cast(tf.cast(x * 3.0, tf.int32), tf.float32), (1, 24), "runs", None),
    "GELU": (tf.nn.gelu, (1, 24), "runs", None),
    "GREATER and SELECT": (lambda x: tf.where(x > 0.0, x, -2.0 * x), (1, 24), "runs", None),
    "TILE": (lambda x: tf.tile(x, [1, 3]), (1, 24), "runs", None),
    "RESIZE_BILINEAR": (lambda x: tf.image.resize(tf.reshape(x, (1, 2, 4, 3)), (4, 8)),
                        (1, 24), "runs", None),
    "dynamic batch": (lambda x: tf.nn.relu(x) * 2.0, (None, 24), "runs", None),
    "2-D STRIDED_SLICE": (lambda x: x[:, 2:10:2], (1, 24), "runs", None),
    "3-D BATCH_MATMUL broadcast": (
        lambda x: tf.matmul(tf.reshape(x, (2, 3, 4)), tf.reshape(x, (1, 4, 6))), (1, 24),
        "runs", None),
    "5-D RESHAPE": (lambda x: tf.reshape(as_5d(x) + 1.0, (1, 24)), (1, 24), "refused",
                    "rank 5 > 4"),
    "5-D TRANSPOSE": (lambda x: tf.reshape(tf.transpose(as_5d(x), (0, 4, 3, 2, 1)), (1, 24)),
                      (1, 24), "refused", "permutation of size 5"),
    "5-D STRIDED_SLICE (version 4)": (
        lambda x: tf.reshape(as_5d(x)[:, :, :, :, 1:], (1, 16)), (1, 24), "refused",
        "version 4"),
    "ARG_MAX to int64": (lambda x: tf.cast(tf.argmax(x, axis=-1), tf.float32), (1, 24),
                         "refused", "is int64"),
    "2-D GATHER indices": (lambda x: tf.gather(x, tf.constant([[0, 1], [2, 0]]), axis=1),
                           (1, 3, 4), "refused", "indices of rank 2"),
    "STRIDED_SLICE shrinking an axis": (lambda x: tf.reshape(x, (1, 2, 3, 4))[:, 0, :, 1:3],
                                        (1, 24), "refused", "shrinkAxisMask"),
    "int16 activations": (Int16x8(lambda x: tf.nn.relu(tf.matmul(x, KERNEL) + 1.0)), (1, 24),
                          "refused", "is int16"),
    "CUMSUM": (lambda x: tf.cumsum(x, axis=-1), (1, 24), "wrong", "CUMSUM"),
    "4-D BATCH_MATMUL broadcast, constant": (
        lambda x: tf.matmul(tf.reshape(x, (1, 2, 3, 4)), RIGHT_4D), (1, 24), "wrong",
        "batch dimensions broadcast"),
    "4-D BATCH_MATMUL broadcast": (
        lambda x: tf.matmul(tf.reshape(x, (1, 2, 3, 4)), tf.reshape(x, (1, 1, 4, 6))), (1, 24),
        "wrong", "batch dimensions broadcast"),
}


@pytest.mark.parametrize("case", sorted(OBSERVED))
def test_the_static_checker_says_what_the_engine_was_seen_to_do(case):
    function, shape, engine, reason = OBSERVED[case]
    findings = check_gpu(convert(function, shape))
    if engine == "runs":
        assert findings == [], [str(f) for f in findings]
    else:
        assert any(f.kind == engine and reason in str(f) for f in findings), \
            [str(f) for f in findings]


@needs_engine
@pytest.mark.parametrize("case", sorted(OBSERVED))
def test_the_gpu_engine_still_does_what_was_observed(case):
    function, shape, engine, _ = OBSERVED[case]
    check = check_gpu_engine(convert(function, shape))
    assert check.status == engine, str(check)
    if engine == "refused":
        assert check.messages and check.max_abs_diff is None
    else:
        assert check.max_abs_diff is not None and (engine == "wrong") == (
            check.max_abs_diff > check.tolerance)


@needs_engine
def test_a_refusal_carries_the_engines_own_words():
    check = check_gpu_engine(convert(OBSERVED["5-D TRANSPOSE"][0], (1, 24)))
    text = "\n".join(check.messages)
    assert "TRANSPOSE: Permutation for transpose is invalid" in text
    assert "Tensor dimensions must be less than 5" in text
    assert "openvino" not in text.lower()


def test_an_operator_never_tried_on_the_engine_is_unverified_not_refused():
    findings = check_gpu(convert(lambda x: tf.math.floormod(x, 2.0), (1, 24)))
    assert findings and {f.kind for f in findings} == {"unverified"}
    assert "not known to run on the GPU engine" in str(findings[0])


def test_check_gpu_command_exits_non_zero_on_findings(tmp_path):
    bad, good = tmp_path / "bad.tflite", tmp_path / "good.tflite"
    bad.write_bytes(convert(OBSERVED["ARG_MAX to int64"][0], (1, 24)))
    good.write_bytes(convert(lambda x: tf.nn.relu(x), (1, 24)))
    failed = CliRunner().invoke(main, ["check-gpu", str(bad)])
    assert failed.exit_code == 1 and "ARG_MAX" in failed.output
    passed = CliRunner().invoke(main, ["check-gpu", str(good)])
    assert passed.exit_code == 0 and "0 findings" in passed.output


@needs_engine
def test_check_gpu_run_reports_the_engine_and_fails_on_a_wrong_result(tmp_path):
    wrong, good = tmp_path / "wrong.tflite", tmp_path / "good.tflite"
    wrong.write_bytes(convert(OBSERVED["4-D BATCH_MATMUL broadcast"][0], (1, 24)))
    good.write_bytes(convert(lambda x: tf.nn.relu(x), (1, 24)))
    failed = CliRunner().invoke(main, ["check-gpu", str(wrong), "--run"])
    assert failed.exit_code == 1 and "RUNS BUT IS WRONG" in failed.output
    passed = CliRunner().invoke(main, ["check-gpu", str(good), "--run", "--samples", "3"])
    assert passed.exit_code == 0, passed.output
    assert "runs GPU-only" in passed.output and "on 3 inputs" in passed.output


def test_check_gpu_run_without_the_engine_is_one_line_and_says_what_to_install(
        tmp_path, monkeypatch):
    from keras_gcnprune.export import gpu_engine

    monkeypatch.setattr(gpu_engine.ctypes.util, "find_library", lambda name: None)
    good = tmp_path / "good.tflite"
    good.write_bytes(convert(lambda x: tf.nn.relu(x), (1, 24)))
    result = CliRunner().invoke(main, ["check-gpu", str(good), "--run"])
    assert result.exit_code == 1
    assert "Error: LiteRT's GPU engine cannot run here" in result.output
    assert "apt-get install -y --no-install-recommends chromium libvulkan1" in result.output
