"""SavedModel and TFLite export: parity with Keras, metadata, quantization, failures."""

import json

import keras
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from keras_gcnprune.data import Preprocessing
from keras_gcnprune.export import (
    ExportError,
    check_gpu,
    export_metadata,
    export_run,
    export_saved_model,
    export_tflite,
    read_metadata,
)
from keras_gcnprune.pruning import prunable_weights, topologically_consistent_masks
from keras_gcnprune.training import PruningConfig, TrainConfig, train
from tests.families import FAMILIES


def pruned(model, rate):
    masks = topologically_consistent_masks(model, rate)
    for weight in prunable_weights(model):
        weight.mask.assign(masks[weight.mask.path])
    return model


def inputs(model, samples=8, seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((samples, *model.input_shape[1:])).astype("float32")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A small TCP-pruned AttentionGCN trained on the synthetic gestures."""
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(model="attention_gcn",
                         dataset="synthetic", epochs=30, preprocessing=Preprocessing(frames=16),
                         pruning=PruningConfig(method="tcp", rate=0.8))
    train(config, out, verbose=0)
    return out


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("rate", [None, 0.95])
def test_float_tflite_matches_keras_and_runs_on_the_gpu_delegate(tmp_path, name, rate):
    keras.utils.set_random_seed(0)
    model = FAMILIES[name]()
    if rate is not None:
        pruned(model, rate)
    x = inputs(model)
    report = export_tflite(model, tmp_path / "m.tflite", check_inputs=x,
                           metadata=export_metadata(model))
    assert report.max_abs_diff <= 1e-4 and report.gpu_findings == []
    runner = Interpreter(model_path=str(tmp_path / "m.tflite")).get_signature_runner("classify")
    logits = runner(skeleton=x[:1])["logits"]
    np.testing.assert_allclose(logits, model(x[:1]).numpy(), atol=1e-4)
    assert check_gpu(tmp_path / "m.tflite") == []


def test_saved_model_matches_keras_with_a_static_batch(tmp_path):
    import tensorflow as tf

    model = pruned(FAMILIES["stgcn"](), 0.9)
    report = export_saved_model(model, tmp_path / "sm", batch_size=4,
                                metadata=export_metadata(model, batch_size=4))
    assert report.max_abs_diff <= 1e-4
    signature = tf.saved_model.load(str(tmp_path / "sm")).signatures["classify"]
    assert signature.structured_input_signature[1]["skeleton"].shape == (4, 16, 30, 3)
    x = inputs(model, samples=4)
    np.testing.assert_allclose(signature(skeleton=tf.constant(x))["logits"].numpy(),
                               model(x).numpy(), atol=1e-4)
    assert json.loads((tmp_path / "sm" / "assets" / "metadata.json").read_text())["input"][
        "shape"] == [4, 16, 30, 3]


def test_metadata_is_embedded_and_written_beside_the_file(tmp_path, trained_run):
    reports = export_run(trained_run, tflite=tmp_path / "g.tflite")
    embedded = read_metadata(tmp_path / "g.tflite")
    assert embedded == json.loads((tmp_path / "g.tflite.json").read_text())
    run = json.loads((trained_run / "run.json").read_text())
    assert embedded["labels"] == run["class_names"] and len(embedded["labels"]) == 14
    assert embedded["layout"]["name"] == "mediapipe_hand"
    assert len(embedded["layout"]["joints"]) == 21
    assert embedded["frames"] == 16 and embedded["channels"] == 3
    assert embedded["preprocessing"]["frames"] == 16
    assert embedded["pruning"]["method"] == "tcp"
    assert abs(embedded["pruning"]["realized_rate"] - 0.8) < 0.005
    assert embedded["signature"] == "classify" and reports[0].gpu_findings == []


def test_a_compacted_exports_pruning_rate_is_against_the_unpruned_model(tmp_path, trained_run):
    (report,) = export_run(trained_run, tflite=tmp_path / "c.tflite", compaction=True)
    embedded = read_metadata(tmp_path / "c.tflite")
    assert abs(embedded["pruning"]["realized_rate"] - 0.8) < 0.005
    assert embedded["compaction"] == {"parameters": report.costs["compacted"]["parameters"],
                                      "macs": report.costs["compacted"]["macs"]}


@pytest.mark.parametrize("quantization", ["fp16", "dynamic", "int8"])
def test_quantized_exports_agree_with_keras_on_real_samples(tmp_path, trained_run, quantization):
    (report,) = export_run(trained_run, tflite=tmp_path / "q.tflite",
                           quantization=quantization, dataset="synthetic")
    assert report.top1_agreement >= 0.98
    assert report.gpu_findings == []
    dense_size = export_run(trained_run, tflite=tmp_path / "f.tflite")[0].size_bytes
    assert report.size_bytes < 0.6 * dense_size


def test_int16x8_is_closer_to_keras_than_int8_and_is_flagged_off_the_gpu(tmp_path, trained_run):
    (report,) = export_run(trained_run, tflite=tmp_path / "q.tflite", quantization="int16x8",
                           dataset="synthetic")
    (int8,) = export_run(trained_run, tflite=tmp_path / "i.tflite", quantization="int8",
                         dataset="synthetic")
    assert report.top1_agreement >= 0.98 and report.max_abs_diff < int8.max_abs_diff
    assert report.size_bytes < 1.2 * int8.size_bytes  # int8 weights in both
    assert read_metadata(tmp_path / "q.tflite")["quantization"] == "int16x8"
    # its activations are int16 (and some biases int64), which the engine was seen to refuse
    assert any("is int16" in f for f in report.gpu_findings)
    assert all(f.endswith("(the GPU engine refuses this)") for f in report.gpu_findings)
    if report.gpu_engine is not None:  # where the engine is installed: seen refused
        assert report.gpu_engine.status == "refused"


def test_an_int8_refusal_points_to_int16x8(trained_run, tmp_path, monkeypatch):
    from keras_gcnprune.export import convert

    monkeypatch.setitem(convert.MIN_AGREEMENT, "int8", 1.01)  # no file can agree that often
    with pytest.raises(ExportError, match=r"top-1 agreement .*Nothing was written\. int16x8 "):
        export_run(trained_run, tflite=tmp_path / "q.tflite", quantization="int8",
                   dataset="synthetic")


@pytest.mark.parametrize("quantization", ["int8", "int16x8"])
def test_calibrated_quantizations_need_a_dataset(trained_run, tmp_path, quantization):
    with pytest.raises(ValueError, match=f"{quantization} quantization is calibrated on real"):
        export_run(trained_run, tflite=tmp_path / "q.tflite", quantization=quantization)


def test_a_failed_check_leaves_nothing_behind(tmp_path):
    # TF 2.21's sparse encoding gives wrong outputs for these layers (docs/design.md, Export facts).
    model = pruned(FAMILIES["stgcn"](), 0.95)
    target = tmp_path / "out" / "sparse.tflite"
    with pytest.raises(ExportError, match="max abs difference") as failure:
        export_tflite(model, target, sparse=True, metadata=export_metadata(model))
    assert "Nothing was written" in str(failure.value)
    assert list(tmp_path.iterdir()) == []  # nor the folder the export created
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(ExportError, match="max abs difference"):
        export_tflite(model, kept / "sparse.tflite", sparse=True)
    assert list(kept.iterdir()) == []  # a folder that was there stays, empty


def test_a_bad_batch_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        export_tflite(FAMILIES["attention_gcn"](), tmp_path / "m.tflite", batch_size=0)


def test_a_dynamic_time_dimension_is_refused_saying_why(tmp_path):
    inputs = keras.Input((None, 15, 3))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(
        inputs)))
    for export in (export_tflite, export_saved_model):
        with pytest.raises(ValueError, match=r"input shape \(None, None, 15, 3\).*static shapes"):
            export(model, tmp_path / "dynamic")
    assert list(tmp_path.iterdir()) == []


def test_check_gpu_refuses_what_is_not_a_tflite_flatbuffer(tmp_path):
    good = tmp_path / "good.tflite"
    export_tflite(FAMILIES["attention_gcn"](), good)
    data = good.read_bytes()
    cases = {"empty.tflite": (b"", "0 bytes in all"),
             "offset.tflite": (b"PK\x03\x04" + data[4:], "its flatbuffer is damaged"),
             "identifier.tflite": (data[:4] + b"XXXX" + data[8:], "identifier is b'XXXX'"),
             "cut.tflite": (data[:64], "not a (readable|usable) TFLite model")}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=reason):
            check_gpu(tmp_path / name)
    assert check_gpu(good) == []


def test_int8_reports_its_own_accuracy_next_to_keras_with_stratified_calibration(
        tmp_path, trained_run):
    (report,) = export_run(trained_run, tflite=tmp_path / "i.tflite", quantization="int8",
                           dataset="synthetic", calibration="stratified",
                           calibration_samples=56)
    assert report.top1_accuracy is not None and report.keras_top1_accuracy is not None
    # Accuracies can differ only on the samples where the two models disagree (the fractions
    # are compared with a rounding margin: 1/84 once came out 1e-16 above 1 - 83/84).
    disagreement = 1 - report.top1_agreement
    assert abs(report.top1_accuracy - report.keras_top1_accuracy) <= disagreement + 1e-9


def test_calibration_samples_are_seeded_and_stratified_takes_each_class_alike():
    from keras_gcnprune.export.run import calibration_indices

    labels = np.repeat(np.arange(4), [50, 10, 30, 10])
    stratified = calibration_indices(labels, 20, "stratified")
    assert np.bincount(labels[stratified]).tolist() == [5, 5, 5, 5]
    chosen = calibration_indices(labels, 20, "random")
    assert len(set(chosen)) == 20
    np.testing.assert_array_equal(chosen, calibration_indices(labels, 20, "random"))


def test_a_failed_check_refuses_the_file_unless_asked_to_write_it_with_the_numbers(
        tmp_path, monkeypatch):
    from keras_gcnprune.export import convert

    monkeypatch.setitem(convert.TOLERANCES, "none", -1.0)  # every check fails
    model = FAMILIES["attention_gcn"]()
    x = inputs(model, samples=12)
    targets = np.arange(12) % 8
    with pytest.raises(ExportError, match="Nothing was written"):
        export_tflite(model, tmp_path / "f.tflite", check_inputs=x, labelled_inputs=x,
                      labelled_targets=targets, metadata=export_metadata(model))
    assert not (tmp_path / "f.tflite").exists()
    report = export_tflite(model, tmp_path / "f.tflite", check_inputs=x, labelled_inputs=x,
                           labelled_targets=targets, metadata=export_metadata(model),
                           write_anyway=True, gpu_engine="off")
    assert report.problems and "max abs difference" in report.problems[0]
    verification = read_metadata(tmp_path / "f.tflite")["verification"]
    assert verification["passed"] is False and verification["problems"] == report.problems
    keras_classes = model(x).numpy().argmax(-1)
    assert verification["keras_top1_accuracy"] == pytest.approx(np.mean(keras_classes == targets))
    assert verification["top1_agreement"] == report.top1_agreement
