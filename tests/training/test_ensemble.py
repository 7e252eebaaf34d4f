import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
from keras_gcnprune.training import (
    RunConflictError,
    TrainConfig,
    ensemble_runs,
    evaluate,
    load_run,
    prepare_data,
    train,
)


@pytest.fixture(scope="module")
def gestures():
    return make_synthetic_gestures(subjects=6, test_subjects=2, repetitions=3, seed=0)


@pytest.fixture(scope="module")
def stream_runs(gestures, tmp_path_factory):
    """Runs of one dataset and split, each trained on other streams."""
    root = tmp_path_factory.mktemp("streams")
    runs = {}
    for name, streams in (("joint", ("joint",)), ("motion", ("motion",)),
                          ("bone_motion", ("bone", "motion"))):
        config = TrainConfig(model="attention_gcn", epochs=2, seed=3, validation=0.2,
                             preprocessing=Preprocessing(frames=16, streams=streams))
        train(config, root / name, dataset=gestures, verbose=0)
        runs[name] = root / name
    return runs


def test_ensemble_averages_its_members_logits_on_their_own_streams(gestures, stream_runs,
                                                                   tmp_path):
    paths = [stream_runs["joint"], stream_runs["bone_motion"]]
    metrics = ensemble_runs(paths, tmp_path / "ens", dataset=gestures)
    ensemble, info = load_run(tmp_path / "ens")
    assert info.streams == ("joint", "bone", "motion")
    config = TrainConfig(model="attention_gcn", seed=3, validation=0.2,
                         preprocessing=Preprocessing(frames=16, streams=("joint", "bone",
                                                                         "motion")))
    x_test, y_test = prepare_data(config, gestures).test
    member_logits = []
    for path, channels in zip(paths, (slice(0, 3), slice(3, 9))):
        member, _ = load_run(path)
        member_logits.append(member.predict(x_test[..., channels], verbose=0))
    expected = np.mean(member_logits, axis=0)
    np.testing.assert_allclose(ensemble.predict(x_test, verbose=0), expected, atol=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(expected.argmax(-1) == y_test))
    members = [json.loads((p / "metrics.json").read_text()) for p in paths]
    assert metrics["parameters"] == sum(m["parameters"] for m in members)
    assert metrics["macs"] == sum(m["macs"] for m in members)
    assert metrics["epochs"] == 4
    assert metrics["validation_samples"] == members[0]["validation_samples"]
    assert [m["test_accuracy"] for m in metrics["members"]] == \
        [m["test_accuracy"] for m in members]


def test_an_ensemble_run_is_evaluated_like_any_run(gestures, stream_runs, tmp_path,
                                                   monkeypatch):
    metrics = ensemble_runs([stream_runs["joint"], stream_runs["motion"]], tmp_path / "ens",
                            dataset=gestures)
    monkeypatch.setattr("keras_gcnprune.training.run.load_dataset",
                        lambda spec, on_error: gestures)
    assert evaluate(tmp_path / "ens")["test_accuracy"] == metrics["test_accuracy"]


def test_members_of_other_data_are_refused(gestures, stream_runs, tmp_path):
    other = TrainConfig(model="attention_gcn",
                        epochs=1, seed=4, validation=0.2, preprocessing=Preprocessing(frames=16))
    train(other, tmp_path / "seed4", dataset=gestures, verbose=0)
    with pytest.raises(ValueError, match="same data and split: seed: 3 in .*, 4 in"):
        ensemble_runs([stream_runs["joint"], tmp_path / "seed4"], tmp_path / "ens",
                      dataset=gestures)
    with pytest.raises(ValueError, match="at least 2 trained runs"):
        ensemble_runs([stream_runs["joint"]], tmp_path / "ens", dataset=gestures)


def test_a_directory_holding_another_run_is_refused_unless_overwritten(gestures, stream_runs,
                                                                      tmp_path):
    out = tmp_path / "ens"
    ensemble_runs([stream_runs["joint"], stream_runs["motion"]], out, dataset=gestures)
    ensemble_runs([stream_runs["joint"], stream_runs["motion"]], out, dataset=gestures)
    with pytest.raises(RunConflictError, match="holds another run"):
        ensemble_runs([stream_runs["joint"], stream_runs["bone_motion"]], out,
                      dataset=gestures)
    metrics = ensemble_runs([stream_runs["joint"], stream_runs["bone_motion"]], out,
                            overwrite=True, dataset=gestures)
    assert [m["streams"] for m in metrics["members"]] == [["joint"], ["bone", "motion"]]


def test_a_moved_folder_of_an_ensemble_and_its_members_is_written_again(gestures, stream_runs,
                                                                        tmp_path):
    import shutil

    before, after = tmp_path / "before", tmp_path / "after"
    for name in ("joint", "motion"):
        shutil.copytree(stream_runs[name], before / name)
    ensemble_runs([before / "joint", before / "motion"], before / "ens", dataset=gestures)
    shutil.move(before, after)
    metrics = ensemble_runs([after / "joint", after / "motion"], after / "ens",
                            dataset=gestures)
    members = json.loads((after / "ens" / "run.json").read_text())["members"]
    assert [m["run"] for m in members] == [str(after / "joint"), str(after / "motion")]
    assert [m["relative"] for m in members] == ["../joint", "../motion"]
    assert [m["streams"] for m in metrics["members"]] == [["joint"], ["motion"]]
    with pytest.raises(RunConflictError, match="holds another run"):
        ensemble_runs([after / "motion", after / "joint"], after / "ens", dataset=gestures)


def test_cli_ensemble_reports_members_and_refuses_one_run(gestures, stream_runs, tmp_path,
                                                          monkeypatch):
    monkeypatch.setattr("keras_gcnprune.training.run.load_dataset",
                        lambda spec, on_error: gestures)
    result = CliRunner().invoke(main, ["ensemble", str(stream_runs["joint"]),
                                       str(stream_runs["motion"]), "--out",
                                       str(tmp_path / "ens")])
    assert result.exit_code == 0, result.output
    assert "(motion): test accuracy" in result.output
    assert "validation accuracy" in result.output
    one = CliRunner().invoke(main, ["ensemble", str(stream_runs["joint"]), "--out",
                                    str(tmp_path / "one")])
    assert one.exit_code == 2 and "at least two trained runs" in one.output


@pytest.mark.parametrize("raw_input", [False, True])
def test_an_ensemble_exports_as_one_gpu_clean_tflite_file(gestures, stream_runs, tmp_path,
                                                          raw_input):
    from keras_gcnprune.export import check_gpu, export_run, read_metadata

    ensemble_runs([stream_runs["joint"], stream_runs["bone_motion"]], tmp_path / "ens",
                  dataset=gestures)
    [report] = export_run(tmp_path / "ens", tflite=tmp_path / "ens.tflite", raw_input=raw_input)
    assert report.max_abs_diff <= 1e-4 and report.gpu_findings == []
    assert check_gpu(tmp_path / "ens.tflite") == []
    metadata = read_metadata(tmp_path / "ens.tflite")
    assert metadata["channels"] == (3 if raw_input else 9)
    assert metadata["preprocessing"]["streams"] == ["joint", "bone", "motion"]
