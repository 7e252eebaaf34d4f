"""The output rule (keras_gcnprune.outputs): a command writes only inside the paths it was
given, removes only what it recorded as written, never writes over what it reads, and holds
the folder's lock while it writes."""

import json

import pytest

from keras_gcnprune.outputs import OutputConflictError, OutputFolder, file_output
from tests.conftest import held_by_another_process


def test_a_recorded_file_is_replaced_and_a_users_file_is_neither_replaced_nor_removed(tmp_path):
    (tmp_path / "notes.txt").write_text("the user's")
    out = OutputFolder(tmp_path)
    with out.locked():
        out.write_text("result.json", "1")
        out.write_text("result.json", "2")  # written here before: replaced
        with pytest.raises(OutputConflictError, match="notes.txt exists and was not written"):
            out.write_text("notes.txt", "ours")
        with pytest.raises(OutputConflictError, match="notes.txt exists and was not written"):
            out.remove("notes.txt")
        out.remove("missing.json")  # nothing there: nothing to do
    assert (tmp_path / "notes.txt").read_text() == "the user's"
    assert (tmp_path / "result.json").read_text() == "2"
    assert json.loads(out.record_file.read_text()) == ["result.json"]
    with out.locked():
        out.remove("result.json")
    # nothing of the package's is left: neither is its record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_what_a_command_reads_is_never_written_over(tmp_path):
    source = tmp_path / "run" / "model.keras"
    source.parent.mkdir()
    source.write_text("model")
    out = OutputFolder(tmp_path / "run", reads=[source])
    with out.locked():
        with pytest.raises(OutputConflictError, match="model.keras, which this command reads"):
            out.write_text("model.keras", "other")
        out.write_text("metrics.json", "{}")  # beside it is fine
    folder = OutputFolder(tmp_path, reads=[tmp_path / "run"])
    with folder.locked(), pytest.raises(OutputConflictError, match="which this command reads"):
        folder.write_text("run", "a file over the folder read")
    assert source.read_text() == "model"


def test_writing_without_the_lock_is_a_bug_and_an_idle_command_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="without its lock"):
        OutputFolder(tmp_path).write_text("x", "y")
    with OutputFolder(tmp_path / "new").locked():
        pass
    assert list(tmp_path.iterdir()) == []  # nor the folder it created, nor .gcnprune


def test_a_folder_another_process_writes_in_is_refused_until_it_ends(tmp_path):
    with held_by_another_process(tmp_path) as pid, \
            pytest.raises(OutputConflictError, match=f"process {pid}"), \
            OutputFolder(tmp_path).locked():
        pass
    with OutputFolder(tmp_path).locked() as out:  # the system released it with the process
        out.write_text("x", "y")


def test_an_output_file_names_a_file(tmp_path):
    with pytest.raises(OutputConflictError, match="is a folder; name a file"):
        file_output(tmp_path)
    out, name = file_output(tmp_path / "m.tflite")
    assert (out.path, name) == (tmp_path, "m.tflite")
