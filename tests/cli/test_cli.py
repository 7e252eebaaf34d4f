import json

import pytest
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from keras_gcnprune.data import load_archive

COMMANDS = ["train", "prune", "extract", "report", "evaluate", "layouts", "convert", "quickstart",
            "export", "check-gpu"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_every_option_with_its_default(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    options = [line for line in result.output.splitlines() if line.strip().startswith("--")]
    for line in options:
        assert len(line.split()) > 1, f"option without help: {line}"
    text = " ".join(result.output.split())
    if command == "train":
        assert "[default: attention_gcn]" in text and "[default: 60;" in text


def test_prune_help_states_the_ramp_updates_the_training_uses():
    from keras_gcnprune.training.run import RAMP_UPDATES

    result = CliRunner().invoke(main, ["prune", "--help"], terminal_width=200)
    assert f"takes {RAMP_UPDATES} updates" in " ".join(result.output.split())


def test_layouts_lists_and_shows():
    runner = CliRunner()
    listing = runner.invoke(main, ["layouts"])
    assert listing.exit_code == 0 and "mediapipe_hand" in listing.output
    one = runner.invoke(main, ["layouts", "sbu", "--json"])
    assert json.loads(one.output)[0]["centre"] == 2
    bad = runner.invoke(main, ["layouts", "octopus"])
    assert bad.exit_code == 1 and "Error: Unknown skeleton layout" in bad.output


def test_convert_train_evaluate_from_the_command_line(tmp_path):
    runner = CliRunner()
    archive = tmp_path / "gestures.npz"
    converted = runner.invoke(main, ["convert", "synthetic:4", str(archive)])
    assert converted.exit_code == 0, converted.output
    assert len(load_archive(archive)) == 840
    out = tmp_path / "run"
    trained = runner.invoke(main, [
        "train", "--dataset", str(archive), "--protocol", "cross_subject", "--epochs", "1",
        "--frames", "16", "--streams", "joint", "--option", "heads=2", "--out", str(out),
    ])
    assert trained.exit_code == 0, trained.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"] > 0
    evaluated = runner.invoke(main, ["evaluate", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["test_accuracy"] == metrics["test_accuracy"]


def test_train_rejects_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--streams", "velocity", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown streams" in result.output
    result = runner.invoke(main, ["train", "--option", "heads", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_prune_then_export_compacted_tflite_from_the_command_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "pruned"
    pruned = runner.invoke(main, [
        "prune", "--dataset", "synthetic", "--method", "magnitude", "--rate", "0.99",
        "--epochs", "1", "--frames", "16", "--streams", "joint", "--out", str(out),
    ])
    assert pruned.exit_code == 0, pruned.output
    tflite = tmp_path / "pruned.tflite"
    exported = runner.invoke(main, ["export", str(out), "--tflite", str(tflite), "--compact",
                                    "--json"])
    assert exported.exit_code == 0, exported.output
    (report,) = json.loads(exported.output[exported.output.index("["):])
    assert report["max_abs_diff"] <= report["tolerance"] and report["gpu_findings"] == []
    costs = report["costs"]
    assert costs["max_abs_diff"] <= 1e-5
    assert costs["compacted"]["parameters"] < costs["pruned"]["parameters"]
    checked = runner.invoke(main, ["check-gpu", str(tflite)])
    assert checked.exit_code == 0 and "0 findings" in checked.output
    refused = runner.invoke(main, ["export", str(out), "--tflite", str(tmp_path / "q.tflite"),
                                   "--int8"])
    assert refused.exit_code == 1 and "calibrated on real samples" in refused.output
    assert not (tmp_path / "q.tflite").exists()


def test_mrmp_training_then_a_family_of_extracted_models(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["prune", "--method", "mrmp", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "give rates" in missing.output
    out = tmp_path / "mrmp"
    pruned = runner.invoke(main, [
        "prune", "--dataset", "synthetic", "--method", "mrmp", "--rates", "0.5,0.9",
        "--rates-per-step", "1", "--prior", "laplace", "--epochs", "2", "--frames", "16",
        "--out", str(out),
    ])
    assert pruned.exit_code == 0, pruned.output
    assert "rate     test accuracy" in pruned.output and "\n0.9 " in pruned.output
    assert json.loads((out / "run.json").read_text())["config"]["pruning"]["prior"] == "laplace"
    family = runner.invoke(main, ["extract", str(out), "--rates", "0.6,0.7", "--rate", "0.9",
                                  "--out", str(tmp_path / "family"), "--json"])
    assert family.exit_code == 0, family.output
    rows = json.loads(family.output[family.output.index("["):])
    assert [row["rate"] for row in rows] == [0.6, 0.7, 0.9]
    assert all((tmp_path / "family" / f"rate_{r:g}" / "model.keras").exists()
               for r in (0.6, 0.7, 0.9))
    none = runner.invoke(main, ["extract", str(out)])
    assert none.exit_code == 2 and "--rate" in none.output
