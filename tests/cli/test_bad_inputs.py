"""Inputs that used to give a wrong answer, a wrong file written as verified, a traceback or
unbounded memory: each is now refused in one `Error:` line that says why."""

import json
import shutil

import numpy as np
import pytest

from tests.cli.conftest import TRAIN, invoke, refused


def test_a_model_with_nan_outputs_is_neither_exported_nor_scored(run, tmp_path):
    import keras

    from keras_gcnprune.training import load_model_file

    broken = shutil.copytree(run, tmp_path / "broken", ignore=shutil.ignore_patterns(".gcnprune"))
    model = load_model_file(broken / "model.keras")
    kernel = model.trainable_weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    (broken / "model.keras").unlink()
    keras.saving.save_model(model, broken / "model.keras")
    refused(invoke("export", broken, "--tflite", tmp_path / "m.tflite"),
            "outputs that are not finite", "Nothing was written")
    assert not (tmp_path / "m.tflite").exists()
    refused(invoke("evaluate", broken), "outputs are NaN or infinite on", "no accuracy")


def test_the_same_classes_in_another_order_are_refused_not_scored(run, tmp_path):
    from keras_gcnprune.data import load_dataset

    dataset = load_dataset("synthetic")
    order = list(reversed(range(dataset.num_classes)))
    reordered = type(dataset)(dataset.sequences, np.array([order.index(y) for y in
                                                           dataset.labels]),
                              [dataset.class_names[i] for i in order], dataset.layout,
                              "synthetic_reordered", dataset.meta)
    reordered.save(tmp_path / "reordered.npz")
    refused(invoke("evaluate", run, "--dataset", tmp_path / "reordered.npz", "--protocol",
                   "given"), "names class 0 'push' where the run's model has 'grab'", "same order")


def test_class_names_edited_into_numbers_are_refused(run, tmp_path):
    edited = shutil.copytree(run, tmp_path / "edited", ignore=shutil.ignore_patterns(".gcnprune"))
    info = json.loads((edited / "run.json").read_text())
    info["class_names"] = list(range(len(info["class_names"])))
    (edited / "run.json").write_text(json.dumps(info))
    refused(invoke("evaluate", edited), "run.json: Class name 0 is 0, not a string")
    info["class_names"][:2] = ["grab", "grab\ntap"]
    (edited / "run.json").write_text(json.dumps(info))
    refused(invoke("export", edited, "--tflite", tmp_path / "m.tflite"), "without line breaks")


@pytest.mark.parametrize("option, message", [
    ("foo=1", "Unknown option 'foo' for attention_gcn"),
    ("heads=null", "Option heads=None of attention_gcn: give whole numbers in [1, 4096]"),
    ("heads=1e8", "Option heads=100000000.0"),
    ("heads=1.5", "Option heads=1.5"),
    ("dropout=[1]", "Option dropout=[1] of attention_gcn: give a finite number"),
])
def test_bad_model_options_are_refused_in_one_line(option, message, tmp_path):
    refused(invoke(*TRAIN, "--option", option, "--out", tmp_path / "r"), message)
    assert not (tmp_path / "r").exists()


def test_sizes_that_would_exhaust_memory_are_refused_before_allocating(run, tmp_path):
    refused(invoke(*TRAIN[:3], "--frames", "1000000", "--out", tmp_path / "r"),
            "frames must be in [1, 4096], got 1000000")
    assert invoke("export", run, "--tflite", tmp_path / "m.tflite").exit_code == 0
    refused(invoke("check-gpu", tmp_path / "m.tflite", "--run", "--samples", "100000000"),
            "would hold 100,800,000,000 values")


def test_a_flatbuffer_with_indices_out_of_range_is_refused(run, tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    from keras_gcnprune.export.flatbuffer import read_model

    assert invoke("export", run, "--tflite", tmp_path / "m.tflite").exit_code == 0
    for damage, message in ((lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 999),
                             "operator 0 has operator code 999"),
                            (lambda m: m.subgraphs[0].operators[0].inputs.__setitem__(0, 10**6),
                             "operator 0 tensor index 1000000")):
        model = read_model(tmp_path / "m.tflite")
        damage(model)
        (tmp_path / "bad.tflite").write_bytes(
            bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
        refused(invoke("check-gpu", tmp_path / "bad.tflite"), "flatbuffer is damaged", message)


def test_running_out_of_memory_or_disk_is_one_line(run, monkeypatch, tmp_path):
    import tensorflow as tf

    from keras_gcnprune.export import convert

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(convert, "_write_archive", no_memory)
    refused(invoke("export", run, "--tflite", tmp_path / "m.tflite"), "out of memory;")

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(convert, "_write_archive", full_disk)
    refused(invoke("export", run, "--tflite", tmp_path / "m.tflite"),
            "out of memory or disk space (No space left on device)")
    assert not (tmp_path / "m.tflite").exists()


def test_a_start_ratio_that_sizes_nothing_is_refused(run, tmp_path):
    out = tmp_path / "pruned"
    refused(invoke("prune", "--from", run, "--budget", "1500", "--start-ratio", "8", "--out",
                   out), "--start-ratio sizes a new model for a --budget", exit_code=2)
    refused(invoke("prune", "--rate", "0.5", "--start-ratio", "8", "--out", out),
            "without --from, or leave --start-ratio out", exit_code=2)
    assert not out.exists()


@pytest.mark.parametrize("arguments, message", [
    (["--method", "magnitude", "--block-density", "1"],
     "--block-density applies to tcp only, not magnitude"),
    (["--prior", "laplace"], "--prior applies to srmp, mrmp only, not tcp"),
    (["--method", "srmp", "--supervision", "none"], "--supervision applies to tcp only"),
    (["--block-density", "dense"], "'dense' is not a valid float range. Or 'none':"),
])
def test_a_pruning_option_the_method_does_not_use_is_refused(tmp_path, arguments, message):
    out = tmp_path / "pruned"
    refused(invoke("prune", *arguments, "--out", out), message, exit_code=2)
    assert not out.exists()
