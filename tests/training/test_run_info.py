import json

import pytest

from keras_gcnprune.data import Augmentation, load_dataset
from keras_gcnprune.pruning import PruningConfig
from keras_gcnprune.training import DistillationConfig, RunDirectory, RunInfo, TrainConfig


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def test_a_training_record_is_written_and_read_back_as_it_was(synthetic, tmp_path):
    config = TrainConfig(model="attention_gcn", augmentation=Augmentation(crop=0.8),
                         pruning=PruningConfig(method="mrmp", rates=(0.9, 0.5)))
    info = RunInfo.of_training(config, synthetic)
    run = RunDirectory(tmp_path)
    with run.output.locked():
        run.write_info(info)
    again = run.read_info()
    assert again == info
    assert again.class_names == tuple(synthetic.class_names)
    assert again.layout == synthetic.skeleton
    assert again.preprocessing == config.preprocessing
    assert again.streams == ("joint", "bone", "motion")
    assert again.pruning["rates"] == [0.5, 0.9] and again.pruning["rate"] == 0.9
    assert again.members == () and again.extracted_from is None
    assert set(json.loads(run.run_file.read_text())) == {
        "config", "layout", "class_names", "dataset_name"}


def test_with_config_replaces_settings_and_leaves_the_record_alone(synthetic):
    info = RunInfo.of_training(TrainConfig(), synthetic)
    refit_off = info.with_config(refit=False)
    assert refit_off.config["refit"] is False and info.config["refit"] is True
    assert refit_off.class_names == info.class_names


def test_a_record_written_before_a_setting_existed_is_refused_naming_it(synthetic, tmp_path):
    record = RunInfo.of_training(TrainConfig(), synthetic).to_dict()
    del record["config"]["refit"], record["config"]["label_smoothing"]
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"records no label_smoothing, refit: it was written "
                                         r"by an older keras-gcnprune"):
        RunDirectory(tmp_path).read_info()


@pytest.mark.parametrize("record, message", [
    ({"config": {}}, "is not a run record"),
    ([], "is not a run record"),
    ({"config": {}, "layout": {}, "class_names": "abc"}, "class_names a list"),
])
def test_a_malformed_record_is_refused(record, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        RunInfo.from_dict(record, tmp_path / "run.json")


@pytest.mark.parametrize("refit,validation", [(True, 0.2), (True, 0.0), (False, 0.2)])
def test_a_record_refits_exactly_when_its_training_did(synthetic, refit, validation):
    config = TrainConfig(refit=refit, validation=validation)
    assert RunInfo.of_training(config, synthetic).refits is config.refits


def test_a_record_keeps_its_path_settings_as_seen_from_the_directory_it_is_written_in(
        synthetic, tmp_path):
    config = TrainConfig(initial_model=str(tmp_path / "runs" / "dense" / "model.keras"),
                         distillation=DistillationConfig(str(tmp_path / "teachers" / "big")))
    info = RunInfo.of_training(config, synthetic)
    assert info.relative_paths == {}
    first, second = RunDirectory(tmp_path / "runs" / "tcp"), RunDirectory(tmp_path / "copy")
    for run in (first, second):
        with run.output.locked():
            run.write_info(info.seen_from(tmp_path / "elsewhere"))  # rewritten for `run`
    assert first.read_info().relative_paths == {"initial_model": "../dense/model.keras",
                                                "teacher": "../../teachers/big"}
    assert second.read_info().relative_paths == {"initial_model": "../runs/dense/model.keras",
                                                 "teacher": "../teachers/big"}
    assert second.read_info().config == info.config
