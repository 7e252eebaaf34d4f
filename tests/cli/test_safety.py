"""The commands keep the output rule (keras_gcnprune.outputs) on the paths users give them:
nothing of the user's is written over or removed, nothing they read is written over, and
two commands never mix their files in one folder."""

import shutil

import pytest

from tests.cli.conftest import TRAIN, invoke, refused
from tests.conftest import held_by_another_process


def users_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    for name in ("model.keras", "history.json", "notes.txt"):
        (path / name).write_text(f"the user's {name}")
    (path / "backup").mkdir()
    (path / "backup" / "photo.jpg").write_text("the user's photo")
    return path


def unchanged(path):
    assert (path / "notes.txt").read_text() == "the user's notes.txt"
    assert (path / "model.keras").read_text() == "the user's model.keras"
    assert (path / "history.json").read_text() == "the user's history.json"
    assert (path / "backup" / "photo.jpg").read_text() == "the user's photo"


def test_export_never_removes_a_folder_or_writes_over_the_model_it_reads(run, tmp_path):
    documents = users_folder(tmp_path / "documents")
    (documents / "saved_model.pb").write_text("the user's file of a SavedModel's name")
    refused(invoke("export", run, "--saved-model", documents), "saved_model.pb exists and was "
            "not written by gcnprune")
    unchanged(documents)
    model = (run / "model.keras").read_bytes()
    refused(invoke("export", run, "--tflite", run / "model.keras"),
            "model.keras, which this command reads")
    assert invoke("export", run, "--saved-model", run / "model.keras").exit_code == 2
    assert (run / "model.keras").read_bytes() == model
    # A SavedModel into the run directory itself is written beside the run, not over it.
    assert invoke("export", run, "--saved-model", run).exit_code == 0
    assert (run / "model.keras").read_bytes() == model
    assert (run / "saved_model.pb").exists() and (run / "metrics.json").exists()
    assert invoke("evaluate", run).exit_code == 0


def test_an_export_replaces_only_its_own_earlier_file(run, tmp_path):
    mine = tmp_path / "mine.tflite"
    mine.write_text("the user's file")
    refused(invoke("export", run, "--tflite", mine), "mine.tflite exists and was not written")
    assert mine.read_text() == "the user's file"
    ours = tmp_path / "ours.tflite"
    assert invoke("export", run, "--tflite", ours).exit_code == 0
    first = ours.stat().st_mtime_ns
    assert invoke("export", run, "--tflite", ours).exit_code == 0
    assert ours.stat().st_mtime_ns > first and (tmp_path / "ours.tflite.json").exists()


def test_training_into_a_users_folder_keeps_every_file_of_theirs(tmp_path):
    folder = users_folder(tmp_path / "mine")
    refused(invoke(*TRAIN, "--out", folder), "exists and was not written by gcnprune")
    refused(invoke(*TRAIN, "--out", folder, "--overwrite"), "exists and was not written")
    unchanged(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "backup", "history.json", "model.keras", "notes.txt"]


def test_ensemble_keeps_the_users_files_and_its_members(run, tmp_path):
    other = shutil.copytree(run, tmp_path / "other")
    folder = users_folder(tmp_path / "mine")
    refused(invoke("ensemble", run, other, "--out", folder), "exists and was not written")
    unchanged(folder)
    refused(invoke("ensemble", run, other, "--out", other), "which this command reads")
    assert invoke("evaluate", other).exit_code == 0


def test_prune_into_the_run_it_starts_from_is_refused_before_anything_is_removed(run, tmp_path):
    start = shutil.copytree(run, tmp_path / "start")
    before = {p.name: p.read_bytes() for p in start.iterdir() if p.is_file()}
    refused(invoke("prune", "--model", "attention_gcn", "--no-refit", "--from", start, "--out",
                   start, "--overwrite", "--epochs", "1", "--rate", "0.5"),
            "which this command reads")
    assert {p.name: p.read_bytes() for p in start.iterdir() if p.is_file()} == before


def test_a_second_command_on_a_folder_in_use_is_refused(tmp_path):
    with held_by_another_process(tmp_path / "run") as pid:
        refused(invoke(*TRAIN, "--out", tmp_path / "run"),
                "being written by another gcnprune command", f"process {pid}")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_a_finished_run_is_not_trained_again(run):
    metrics = (run / "metrics.json").read_text()
    stamp = (run / "model.keras").stat().st_mtime_ns
    result = invoke(*TRAIN, "--out", run)
    assert result.exit_code == 0 and "not trained again" in result.output
    assert (run / "metrics.json").read_text() == metrics
    assert (run / "model.keras").stat().st_mtime_ns == stamp


@pytest.fixture(scope="module")
def mrmp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("safety") / "mrmp"
    result = invoke("prune", "--model", "attention_gcn", "--no-refit", "--method", "mrmp",
                    "--rates", "0.5,0.9", "--epochs", "1", "--frames", "16", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_extract_refuses_rates_of_one_folder_and_another_runs_extraction(mrmp_run, tmp_path,
                                                                         monkeypatch):
    family = tmp_path / "family"
    result = invoke("extract", mrmp_run, "--rates", "0.7,0.7000001", "--out", family)
    refused(result, "both name the folder rate_0.7")
    assert not family.exists()
    assert invoke("extract", mrmp_run, "--rate", "0.7", "--out", family).exit_code == 0
    copy = shutil.copytree(mrmp_run, tmp_path / "copy")
    refused(invoke("extract", copy, "--rate", "0.7", "--out", family),
            "holds another extraction", "extracted_from")
    # Overwritten, then interrupted after the model: its old metrics are gone, not beside it.
    from keras_gcnprune.training import RunDirectory

    def interrupted(self, model, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDirectory, "save_model", interrupted)
    result = invoke("extract", copy, "--rate", "0.7", "--out", family, "--overwrite")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert not (family / "rate_0.7" / "metrics.json").exists()
