import pytest

from keras_gcnprune.training import RunDirectory


def test_a_run_directory_names_its_files_and_finds_itself_from_a_model_file(tmp_path):
    run = RunDirectory(tmp_path)
    assert [path.name for path in run.artifacts()] == [
        "metrics.json", "model.keras", "run.json", "history.json", "stripped.keras",
        "connectivity.json", "backup", "selection"]
    assert RunDirectory.holding(tmp_path)[1] == tmp_path / "model.keras"
    holder, model_file = RunDirectory.holding(tmp_path / "stripped.keras")
    assert (holder.path, model_file) == (tmp_path, tmp_path / "stripped.keras")


def test_metrics_mark_a_finished_run_and_damaged_files_are_named(tmp_path):
    run = RunDirectory(tmp_path)
    assert not run.finished()
    with run.output.locked():
        run.write_metrics({"test_accuracy": 0.5})
    assert run.finished() and run.read_metrics() == {"test_accuracy": 0.5}
    run.metrics_file.write_text("{truncated")
    with pytest.raises(ValueError, match="metrics.json is not a readable metrics file"):
        run.read_metrics()
    run.run_file.write_text('{"config": {}}')
    with pytest.raises(ValueError, match="run.json is not a run record"):
        run.read_info()


def test_loading_an_unfinished_run_says_to_rerun_it(tmp_path):
    run = RunDirectory(tmp_path)
    run.backup_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="unfinished run"):
        run.load()


def test_a_keras_file_whose_configuration_expands_to_gigabytes_is_not_loaded(tmp_path):
    import zipfile

    from keras_gcnprune.training import load_model_file

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", " " * (65 * 2**20))
    assert path.stat().st_size < 2**20
    with pytest.raises(ValueError, match="config.json expands to 68,157,440 bytes"):
        load_model_file(path)


def test_a_mask_of_other_values_than_0_and_1_is_refused_on_load(tmp_path):
    from keras_gcnprune import models
    from keras_gcnprune.pruning.masks import masked_layers
    from keras_gcnprune.training import load_model_file

    model = models.build("attention_gcn", "sbu", num_classes=4, frames=16)
    mask = masked_layers(model)[0].masked_weights()[0].mask
    mask.assign(mask.numpy() * 2.0)
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="holds .* values other than 0 and 1 \\(e.g. 2.0\\)"):
        load_model_file(tmp_path / "m.keras")
