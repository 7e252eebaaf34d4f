import pytest

from keras_gcnprune.training import RunDirectory


def test_a_run_directory_names_its_files_and_finds_itself_from_a_model_file(tmp_path):
    run = RunDirectory(tmp_path)
    assert [path.name for path in run.artifacts()] == [
        "metrics.json", "model.keras", "run.json", "history.json", "stripped.keras",
        "connectivity.json", "backup"]
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
