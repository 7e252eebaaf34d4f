"""The GPU delegate checker flags what the delegate cannot run, and passes what it can."""

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from keras_gcnprune.export import check_gpu


def convert(function, shape):
    """TFLite bytes of a tf.function on one float input of `shape`."""
    concrete = tf.function(function).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    return converter.convert()


def five_d(x):
    return tf.reshape(tf.reshape(x, (1, 2, 2, 2, 3)) + 1.0, (1, 24))


def arg_max(x):
    return tf.argmax(x, axis=-1)


def gather_2d(x):
    return tf.gather(x, tf.constant([[0, 1], [2, 0]]), axis=1)


def transpose_5d(x):
    return tf.reshape(tf.transpose(tf.reshape(x, (1, 2, 2, 2, 3)), (0, 4, 3, 2, 1)), (1, 24))


def softmax_beta(x):
    return tf.nn.softmax(2.0 * x)


FAILING = {
    "5-D reshape": (five_d, (1, 24), "rank 5 > 4"),
    "ARG_MAX": (arg_max, (1, 24), "ARG_MAX: operator not supported"),
    "2-D gather indices": (gather_2d, (1, 3, 4), "indices of rank 2"),
    "5-D transpose": (transpose_5d, (1, 24), "permutation of size 5"),
    "dynamic batch": (lambda x: tf.nn.relu(x) * 2.0, (None, 24), "dynamic shape"),
}


@pytest.mark.parametrize("case", sorted(FAILING))
def test_models_the_delegate_cannot_run_are_flagged(case):
    function, shape, reason = FAILING[case]
    findings = check_gpu(convert(function, shape))
    assert any(reason in str(finding) for finding in findings), [str(f) for f in findings]


def test_a_supported_model_passes():
    kernel = np.random.default_rng(0).standard_normal((24, 8)).astype("float32")
    data = convert(lambda x: tf.nn.softmax(tf.nn.relu(tf.matmul(x, kernel) + 1.0)), (1, 24))
    assert check_gpu(data) == []


def test_check_gpu_command_exits_non_zero_on_findings(tmp_path):
    bad, good = tmp_path / "bad.tflite", tmp_path / "good.tflite"
    bad.write_bytes(convert(arg_max, (1, 24)))
    good.write_bytes(convert(lambda x: tf.nn.relu(x), (1, 24)))
    failed = CliRunner().invoke(main, ["check-gpu", str(bad)])
    assert failed.exit_code == 1 and "ARG_MAX" in failed.output
    passed = CliRunner().invoke(main, ["check-gpu", str(good)])
    assert passed.exit_code == 0 and "0 findings" in passed.output
