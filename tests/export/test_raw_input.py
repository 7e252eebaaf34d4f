"""Raw landmarks in, probabilities out: the raw-input export equals the Python preprocessing
followed by the plain model, and passes both GPU checks."""

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from keras_gcnprune import models
from keras_gcnprune.cli.main import main
from keras_gcnprune.data import Preprocessing, load_dataset
from keras_gcnprune.export import (
    export_metadata,
    export_run,
    export_tflite,
    read_metadata,
    with_probabilities,
    with_raw_input,
)
from keras_gcnprune.export.standard_metadata import read_standard_metadata
from tests.export.test_export import trained_run  # noqa: F401 (a module fixture)

STREAMS = ("joint", "bone", "motion")


@pytest.mark.real_data
@pytest.mark.parametrize("family", ["attention_gcn", "stgcn"])
def test_on_real_sequences_it_equals_python_preprocessing_then_the_model(
        tmp_path, real_data, family):
    dataset = load_dataset(f"sbu:{real_data / 'sbu_kinect_interaction'}")
    preprocessing = Preprocessing(frames=32, streams=STREAMS)
    # What an app holds: the last 32 frames, as the sensor gave them.
    raw_windows, _ = Preprocessing(frames=32, centre=False, scale=False).arrays(dataset)
    raw_windows = raw_windows[::9][:32]
    keras.utils.set_random_seed(0)
    plain = models.build(family, dataset.skeleton, num_classes=dataset.num_classes, frames=32,
                         channels=9)
    raw_model = with_raw_input(plain, preprocessing, dataset.skeleton)
    prepared = np.stack([preprocessing.transform(w, dataset.skeleton) for w in raw_windows])
    np.testing.assert_allclose(raw_model(raw_windows).numpy(), plain(prepared).numpy(),
                               atol=1e-5, rtol=0)
    report = export_tflite(raw_model, tmp_path / "raw.tflite", check_inputs=raw_windows,
                           metadata=export_metadata(raw_model))
    assert report.max_abs_diff <= 1e-5 and report.gpu_findings == []
    assert report.gpu_engine is None or report.gpu_engine.status == "runs"


def test_probabilities_are_a_softmax_and_the_output_is_named_for_them(tmp_path):
    keras.utils.set_random_seed(0)
    plain = models.build("stgcn", "sbu", num_classes=8, frames=16)
    model = with_probabilities(plain)
    x = np.random.default_rng(0).standard_normal((4, 16, 15, 3)).astype("float32")
    np.testing.assert_allclose(model(x).numpy(), keras.ops.softmax(plain(x)).numpy(), atol=1e-6)
    export_tflite(model, tmp_path / "p.tflite", metadata=export_metadata(model),
                  gpu_engine="off")
    assert read_metadata(tmp_path / "p.tflite")["output"]["name"] == "probabilities"
    (output,) = read_standard_metadata(tmp_path / "p.tflite")["outputs"]
    assert output["name"] == "probabilities" and "8 probabilities" in output["description"]


def test_a_model_and_a_preprocessing_that_do_not_fit_are_refused():
    plain = models.build("stgcn", "sbu", num_classes=8, frames=16)
    with pytest.raises(ValueError, match="takes 16 frames of 3 channels"):
        with_raw_input(plain, Preprocessing(frames=16, streams=("joint", "bone")), "sbu")


def test_export_run_with_raw_input_agrees_with_keras_on_raw_test_windows(
        tmp_path, trained_run):  # noqa: F811
    (report,) = export_run(trained_run, tflite=tmp_path / "raw.tflite", dataset="synthetic",
                           raw_input=True, axes="x,-y,z", probabilities=True, compaction=True)
    assert report.top1_agreement >= 0.99
    metadata = read_metadata(tmp_path / "raw.tflite")
    assert metadata["raw_input"]["axes"] == "x,-y,z" and metadata["raw_input"]["centre"]
    assert metadata["output"]["name"] == "probabilities"
    assert abs(metadata["pruning"]["realized_rate"] - 0.8) < 0.005
    (tensor_in,) = read_standard_metadata(tmp_path / "raw.tflite")["inputs"]
    assert "raw coordinates" in tensor_in["description"]


def test_the_command_line_exports_raw_input(tmp_path, trained_run):  # noqa: F811
    result = CliRunner().invoke(main, ["export", str(trained_run), "--tflite",
                                       str(tmp_path / "r.tflite"), "--raw-input",
                                       "--probabilities", "--gpu-engine", "off"])
    assert result.exit_code == 0, result.output
    assert read_metadata(tmp_path / "r.tflite")["raw_input"]["streams"] == ["joint"]
    bad = CliRunner().invoke(main, ["export", str(trained_run), "--tflite",
                                    str(tmp_path / "b.tflite"), "--raw-input", "--axes", "x,q"])
    assert bad.exit_code == 1 and "Error:" in bad.output and "for example" in bad.output
