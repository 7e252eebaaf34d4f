import json
from dataclasses import replace

from migrate_runs import BEHAVIOUR_BEFORE_SETTING, migrate

from keras_gcnprune.data import Augmentation, load_dataset
from keras_gcnprune.pruning import PruningConfig
from keras_gcnprune.training import RunDirectory, RunInfo, TrainConfig
from keras_gcnprune.training.directory import settings_difference


def _old_record(config: TrainConfig, drop: tuple[str, ...], drop_pruning=(),
                drop_augmentation=()) -> dict:
    record = RunInfo.of_training(config, load_dataset("synthetic")).to_dict()
    for key in drop:
        del record["config"][key]
    for key in drop_pruning:
        del record["config"]["pruning"][key]
    for key in drop_augmentation:
        del record["config"]["augmentation"][key]
    return record


def test_a_migrated_run_reads_as_it_trained_then(tmp_path):
    run = tmp_path / "bench" / "runs" / "dense"
    run.mkdir(parents=True)
    then = TrainConfig(refit=False, validation=0.1, label_smoothing=0.0)
    old = _old_record(then, ("warmup_epochs", "refit", "label_smoothing"),
                      drop_augmentation=("shear", "crop"))
    (run / "run.json").write_text(json.dumps(old))
    assert migrate([tmp_path]) == [run / "run.json"]
    info = RunDirectory(run).read_info()
    # refit recorded as runs trained before it existed: without refitting
    assert settings_difference(info.config, then.to_dict()) == ""
    cropped = replace(then, augmentation=Augmentation(crop=0.8))
    assert settings_difference(info.config, cropped.to_dict()).startswith("augmentation:")
    assert migrate([tmp_path]) == []  # nothing left to add


def test_extraction_settings_added_since_are_recorded_as_they_behaved(tmp_path):
    for method, extraction_changed in (("magnitude", False), ("srmp", True)):
        config = TrainConfig(pruning=PruningConfig(method=method, rate=0.9))
        run = tmp_path / method
        run.mkdir()
        (run / "run.json").write_text(json.dumps(_old_record(
            config, (), drop_pruning=("rate_weights", "self_distillation",
                                      "self_distillation_teacher", "consistent_extraction"))))
        migrate([run])
        difference = settings_difference(RunDirectory(run).read_info().config,
                                         config.to_dict())
        # srmp extracted the largest-ranked weights then; magnitude extracts nothing
        assert bool(difference) == extraction_changed


def test_accuracy_results_record_the_old_behaviour_of_newer_settings(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"benchmark": "accuracy", "settings": {"block_density": 1.0}}))
    (tmp_path / "speed").mkdir()
    (tmp_path / "speed" / "results.json").write_text(json.dumps({"benchmark": "speed"}))
    assert migrate([tmp_path]) == [path]
    settings = json.loads(path.read_text())["settings"]
    assert settings == {**BEHAVIOUR_BEFORE_SETTING, "block_density": 1.0}
