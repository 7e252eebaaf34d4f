"""The standard TFLite metadata: what this package writes reads back, field by field, with the
labels packed after the model, and tflite-support's own reader agrees where it is installed."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_gcnprune.export import export_metadata, export_tflite
from keras_gcnprune.export.standard_metadata import (
    packed_files,
    read_standard_metadata,
    standard_metadata,
)
from tests.families import FAMILIES

TFLITE_SUPPORT_PYTHON = os.environ.get("GCNPRUNE_TFLITE_SUPPORT_PYTHON")
LABELS = ["wave", "clap", "point", "fist", "swipe left", "swipe right", "pinch", "ok"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = FAMILIES["attention_gcn"]()
    metadata = export_metadata(model, quantization="fp16")
    metadata["labels"] = LABELS
    path = tmp_path_factory.mktemp("metadata") / "gesture.tflite"
    export_tflite(model, path, quantization="fp16", metadata=metadata, gpu_engine="off")
    return model, path


def test_the_standard_metadata_reads_back_field_by_field(exported):
    _, path = exported
    read = read_standard_metadata(path)
    assert read["name"] == "attention_gcn" and read["author"] == "keras-gcnprune"
    assert read["min_parser_version"] == "1.0.0"
    assert "8 classes" in read["description"] and "float16 weights" in read["description"]
    (tensor_in,), (tensor_out,) = read["inputs"], read["outputs"]
    assert tensor_in["name"] == "skeleton" and "[1, 16, 30, 3]" in tensor_in["description"]
    assert tensor_out["name"] == "logits" and tensor_in["content_properties"] == 1
    assert tensor_out["associated_files"] == [{
        "name": "labels.txt", "description": "Class labels, one per line, in output order.",
        "type": 2}]


def test_the_labels_are_packed_after_the_model_and_the_model_still_runs(exported):
    model, path = exported
    assert packed_files(path) == {"labels.txt": ("\n".join(LABELS) + "\n").encode()}
    x = np.random.default_rng(0).standard_normal((1, 16, 30, 3)).astype("float32")
    runner = Interpreter(model_path=str(path)).get_signature_runner("classify")
    np.testing.assert_allclose(runner(skeleton=x)["logits"], model(x).numpy(), atol=2e-2)


def test_the_flatbuffer_has_the_schema_file_identifier():
    metadata = export_metadata(FAMILIES["stgcn"]())
    assert standard_metadata(metadata)[4:8] == b"M001"


def test_metadata_that_is_not_export_metadata_is_refused():
    with pytest.raises(ValueError, match="lacks .*'labels'"):
        standard_metadata({"model": "m"})


def test_a_file_without_it_is_named(tmp_path):
    model = FAMILIES["attention_gcn"]()
    export_tflite(model, tmp_path / "bare.tflite", gpu_engine="off")
    assert packed_files(tmp_path / "bare.tflite") == {}
    with pytest.raises(ValueError, match="carries no TFLITE_METADATA"):
        read_standard_metadata(tmp_path / "bare.tflite")


DISPLAY = """
import json, sys
from tflite_support import metadata
shown = metadata.MetadataDisplayer.with_model_file(sys.argv[1])
print(json.dumps({"metadata": json.loads(shown.get_metadata_json()),
                  "packed": shown.get_packed_associated_file_list(),
                  "labels": shown.get_associated_file_buffer("labels.txt").decode()}))
"""


@pytest.mark.skipif(not TFLITE_SUPPORT_PYTHON or not Path(TFLITE_SUPPORT_PYTHON).exists(),
                    reason="set GCNPRUNE_TFLITE_SUPPORT_PYTHON to a Python with tflite-support "
                           "0.4.4 (a separate venv: it needs protobuf < 4)")
def test_tflite_supports_metadata_displayer_reads_the_same(exported):
    _, path = exported
    shown = json.loads(subprocess.run([TFLITE_SUPPORT_PYTHON, "-c", DISPLAY, str(path)],
                                      capture_output=True, text=True, check=True).stdout)
    ours = read_standard_metadata(path)
    assert shown["packed"] == ["labels.txt"]
    assert shown["labels"].splitlines() == LABELS
    model = shown["metadata"]
    assert model["name"] == ours["name"] and model["description"] == ours["description"]
    (subgraph,) = model["subgraph_metadata"]
    output = subgraph["output_tensor_metadata"][0]
    assert output["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert output["content"]["content_properties_type"] == "FeatureProperties"
    assert subgraph["input_tensor_metadata"][0]["description"] == \
        ours["inputs"][0]["description"]
