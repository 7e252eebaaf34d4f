import json

import numpy as np
import pytest
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from keras_gcnprune.data import load_archive

COMMANDS = ["train", "prune", "extract", "ensemble", "report", "evaluate", "layouts", "convert",
            "quickstart", "export", "check-gpu"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_explains_every_option_with_its_default(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    options = [line for line in result.output.splitlines() if line.strip().startswith("--")]
    for line in options:
        assert len(line.split()) > 1, f"option without help: {line}"
    text = " ".join(result.output.split())
    if command == "train":
        from keras_gcnprune.training import TrainConfig

        assert f"[default: {TrainConfig.model}]" in text
        assert f"[default: {TrainConfig.epochs};" in text
        assert "[default: joint,bone,motion]" in text and "[default: refit]" in text


def test_prune_help_states_the_ramp_updates_the_training_uses():
    from keras_gcnprune.pruning.config import RAMP_UPDATES

    result = CliRunner().invoke(main, ["prune", "--help"], terminal_width=200)
    assert f"takes {RAMP_UPDATES} updates" in " ".join(result.output.split())


def test_prune_defaults_are_the_librarys():
    from keras_gcnprune.training import PruningConfig

    defaults = {p.name: p.default for p in main.commands["prune"].params}
    library = PruningConfig(method="tcp", rate=0.9)
    assert defaults["supervision_strength"] == library.supervision_strength == 0.03
    assert defaults["ramp"] == f"{library.begin:g},{library.end:g}"


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
        "train", "--model", "attention_gcn", "--no-refit",
        "--dataset", str(archive), "--protocol", "cross_subject", "--epochs", "1",
        "--frames", "16", "--streams", "joint", "--option", "heads=2", "--out", str(out),
    ])
    assert trained.exit_code == 0, trained.output
    metrics = json.loads((out / "metrics.json").read_text())
    import keras

    model = keras.models.load_model(out / "model.keras")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    statistics = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights
                     if "moving_" in w.path)
    # Weights, never masks or step counters: count_params() counts every mask too.
    assert metrics["parameters"] == trainable + statistics < model.count_params()
    assert metrics["nonzero_parameters"] == metrics["parameters"]  # dense
    evaluated = runner.invoke(main, ["evaluate", str(out), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["test_accuracy"] == metrics["test_accuracy"]


def test_train_rejects_bad_options(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                  "--streams", "velocity", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown streams" in result.output
    result = runner.invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                  "--option", "heads", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_training_recipe_options_reach_the_run_and_no_augment_refuses_them(tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    trained = runner.invoke(main, [
        "train", "--model", "attention_gcn", "--no-refit",
        "--epochs", "2", "--frames", "16", "--option", "heads=2", "--rotation", "40",
        "--shear", "0.2", "--crop", "0.8", "--label-smoothing", "0.2", "--warmup-epochs", "1",
        "--weight-decay", "0.001", "--streams", "joint,motion", "--out", str(out)])
    assert trained.exit_code == 0, trained.output
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["augmentation"] == {"rotation": 40.0, "scale": 0.1, "shear": 0.2,
                                      "noise": 0.01, "crop": 0.8, "point_dims": 3,
                                      "persons": 1}
    assert (config["label_smoothing"], config["warmup_epochs"], config["weight_decay"]) == \
        (0.2, 1, 0.001)
    refused = runner.invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                   "--no-augment", "--rotation", "30", "--crop", "0.9",
                                   "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "drop --rotation, --crop" in refused.output


def test_prune_to_a_budget_of_nonzero_weights(tmp_path):
    runner = CliRunner()
    out = tmp_path / "budget"
    pruned = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                  "--budget", "1500", "--epochs", "1",
                                  "--frames", "16", "--validation", "0", "--out", str(out)])
    assert pruned.exit_code == 0, pruned.output
    assert "budget 1,500 nonzero weights: rate" in pruned.output
    # the default attention_gcn is 17 times the budget: the default start ratio of 4 starts
    # from a model of about 6,000 weights
    assert "about 4 times the budget (--start-ratio)" in pruned.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nonzero_parameters"] == 1500
    assert abs(metrics["parameters"] - 6000) < 0.15 * 6000  # widths come in whole channels
    for arguments, message in [
        (["--budget", "1500", "--rate", "0.5"], "Give --budget or --rate/--rates, not both"),
        (["--budget", "1500,900"], "tcp prunes to one budget; 2 given"),
        (["--budget", "3"], "out of reach"), (["--budget", "many"], "not a comma-separated"),
        (["--start-ratio", "8"], "--start-ratio sizes a new model for a --budget"),
        (["--budget", "1500", "--start-ratio", "1"], "not in the range x>1"),
    ]:
        refused = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                       "--method", "tcp", *arguments, "--frames", "16",
                                       "--out", str(tmp_path / "refused")])
        assert refused.exit_code in (1, 2) and message in refused.output, refused.output
        assert "Traceback" not in refused.output


def test_prune_in_channel_blocks_to_a_budget_of_compacted_weights(tmp_path):
    out = tmp_path / "block"
    pruned = CliRunner().invoke(main, [
        "prune", "--model", "attention_gcn", "--no-refit", "--block-density", "1",
        "--budget", "1500", "--epochs", "1",
        "--frames", "16", "--validation", "0", "--out", str(out),
        "--start-ratio", "20"])  # the given model (25,718 weights): no smaller start
    assert pruned.exit_code == 0, pruned.output
    assert "budget 1,500 weights once compacted: rate" in pruned.output
    assert pruned.output.index("sizing: searching the channel steps") < \
        pruned.output.index("budget 1,500")  # said before the search, not after
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"; {metrics['compacted_parameters']:,} weights and {metrics['compacted_macs']:,} " \
        "MACs once compacted (export --compact)" in pruned.output
    # whole channels move the count in steps (here about 370 weights), and the trained
    # weights pick the channels
    assert abs(metrics["compacted_parameters"] - 1500) < 0.25 * 1500, metrics
    # dead channels' biases and normalization are not in the budget: more weights are kept
    # than pruning to 1,500 nonzero weights would keep
    assert metrics["nonzero_parameters"] > 1500


def test_prune_to_a_share_of_the_macs_compacts_to_about_that_share(tmp_path):
    out = tmp_path / "macs"
    runner = CliRunner()
    pruned = runner.invoke(main, [
        "prune", "--model", "attention_gcn", "--no-refit", "--mac-share", "0.2",
        "--epochs", "1", "--frames", "16", "--validation", "0", "--out", str(out)])
    assert pruned.exit_code == 0, pruned.output
    assert "0.2 of the MACs once compacted: rate" in pruned.output
    metrics = json.loads((out / "metrics.json").read_text())
    dense = runner.invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                 "--epochs", "1", "--frames", "16", "--validation", "0",
                                 "--out", str(tmp_path / "dense")])
    assert dense.exit_code == 0, dense.output
    dense_macs = json.loads((tmp_path / "dense/metrics.json").read_text())["macs"]
    # whole channels move the MACs in steps, and the trained weights pick the channels
    assert abs(metrics["compacted_macs"] - 0.2 * dense_macs) < 0.05 * dense_macs, metrics
    for arguments, message in [
        (["--mac-share", "0.2", "--rate", "0.5"], "Give --mac-share or --rate, not both"),
        (["--mac-share", "0.2", "--budget", "1500"], "Give budgets or mac_share, not both"),
        (["--mac-share", "0.2", "--block-density", "none"], "mac_share needs channel blocks"),
        (["--mac-share", "1.5"], "--mac-share"),
        (["--mac-share", "0.2", "--method", "magnitude"], "--mac-share applies to tcp only"),
    ]:
        refused = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                       *arguments, "--frames", "16",
                                       "--out", str(tmp_path / "refused")])
        assert refused.exit_code in (1, 2) and message in refused.output, refused.output
        assert "Traceback" not in refused.output


def test_prune_then_export_compacted_tflite_from_the_command_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "pruned"
    pruned = runner.invoke(main, [
        "prune", "--model", "attention_gcn", "--no-refit",
        "--dataset", "synthetic", "--method", "magnitude", "--rate", "0.99",
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
    missing = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                   "--method", "mrmp", "--out", str(tmp_path)])
    assert missing.exit_code == 2 and "give rates" in missing.output
    out = tmp_path / "mrmp"
    pruned = runner.invoke(main, [
        "prune", "--model", "attention_gcn", "--no-refit",
        "--dataset", "synthetic", "--method", "mrmp", "--rates", "0.5,0.9",
        "--rates-per-step", "1", "--rate-weights", "1,3", "--prior", "laplace", "--epochs", "2",
        "--frames", "16", "--out", str(out),
    ])
    assert pruned.exit_code == 0, pruned.output
    assert "rate     test accuracy" in pruned.output and "\n0.9 " in pruned.output
    pruning = json.loads((out / "run.json").read_text())["config"]["pruning"]
    assert pruning["prior"] == "laplace" and pruning["rate_weights"] == [1.0, 3.0]
    for weights, message in (("1", "rate_weights must be 2 positive numbers"),
                             ("1,-2", "rate weights must be positive numbers")):
        refused = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                       "--method", "mrmp", "--rates", "0.5,0.9",
                                       "--rate-weights", weights, "--out", str(tmp_path)])
        assert refused.exit_code == 2 and message in refused.output, refused.output
    alone = runner.invoke(main, ["prune", "--model", "attention_gcn", "--no-refit",
                                 "--method", "mrmp", "--rates", "0.5,0.9",
                                 "--rates-per-step", "1", "--self-distillation", "0.5",
                                 "--out", str(tmp_path)])
    assert alone.exit_code == 2 and "needs two rates per step or more" in alone.output
    family = runner.invoke(main, ["extract", str(out), "--rates", "0.6,0.7", "--rate", "0.9",
                                  "--out", str(tmp_path / "family"), "--json"])
    assert family.exit_code == 0, family.output
    rows = json.loads(family.output[family.output.index("["):])
    assert [row["rate"] for row in rows] == [0.6, 0.7, 0.9]
    assert all((tmp_path / "family" / f"rate_{r:g}" / "model.keras").exists()
               for r in (0.6, 0.7, 0.9))
    none = runner.invoke(main, ["extract", str(out)])
    assert none.exit_code == 2 and "--rate" in none.output


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                       "--epochs", "1", "--frames", "16", "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    return out


def one_error_line(result, *fragments, exit_code=1):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == exit_code, result.output
    assert lines[-1].startswith("Error: ") and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_expected_errors_are_one_line_and_exit_1(tmp_path, finished_run):
    import numpy as np

    runner = CliRunner()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "empty.tflite").write_bytes(b"")
    np.savez(tmp_path / "nan.npz", poses=np.full((2, 15, 2), np.nan, "float32"),
             lengths=np.array([1, 1]), labels=np.array([0, 1]), layout=np.array("jhmdb"))
    cases = [
        (["convert", str(tmp_path / "empty.npz"), str(tmp_path / "x.npz")], "empty or cut short"),
        (["convert", "msr:/nowhere", str(tmp_path / "x.npz")], "/nowhere"),
        (["train", "--model", "attention_gcn", "--no-refit",
          "--dataset", str(tmp_path / "nan.npz"), "--out", str(tmp_path / "r")],
         "nan.npz: sequence 0"),
        (["train", "--model", "attention_gcn", "--no-refit",
          "--learning-rate", "nan", "--out", str(tmp_path / "r")],
         "learning_rate must be a positive number, got nan"),
        (["train", "--model", "attention_gcn", "--no-refit",
          "--option", "heads=0", "--epochs", "1", "--out", str(tmp_path / "r")],
         "Option heads=0 of attention_gcn: give whole numbers"),
        (["evaluate", str(finished_run), "--protocol", "fold9"], "Unknown protocol 'fold9'"),
        (["report", str(tmp_path / "empty.tflite")], "empty.tflite"),
        (["check-gpu", str(tmp_path / "empty.tflite")], "is not a TFLite model"),
        (["check-gpu", str(finished_run / "model.keras")], "is not a TFLite model"),
        (["layouts", "jhmdb_x100000000"], "persons must be in [1, 16]"),
    ]
    for arguments, fragment in cases:
        one_error_line(runner.invoke(main, arguments), fragment)
    rates = ",".join(f"{r:.3f}" for r in np.linspace(0.01, 0.99, 1000))
    one_error_line(runner.invoke(main, ["extract", str(finished_run), "--rates", rates]),
                   "1000 rates given; at most 64", exit_code=2)  # a usage error
    debug = runner.invoke(main, ["--debug", "layouts", "octopus"])
    assert isinstance(debug.exception, ValueError)  # --debug: the exception, traceback and all


def test_a_run_of_other_settings_is_refused_unless_overwrite(finished_run, tmp_path):
    import shutil

    out = shutil.copytree(finished_run, tmp_path / "copy")
    runner = CliRunner()
    other = ["train", "--model", "attention_gcn", "--no-refit",
             "--epochs", "1", "--frames", "8", "--seed", "3", "--out", str(out)]
    one_error_line(runner.invoke(main, other), "holds a run with other settings",
                   "seed: 0 there, 3 now")
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 0
    assert runner.invoke(main, [*other, "--overwrite"]).exit_code == 0
    exported = runner.invoke(main, ["export", str(out), "--tflite", str(tmp_path / "m.tflite"),
                                    "--json"])
    assert exported.exit_code == 0, exported.output
    from keras_gcnprune.export import read_metadata

    assert read_metadata(tmp_path / "m.tflite")["frames"] == 8


def test_a_terminated_export_leaves_no_staging_folder(finished_run, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "out"
    target.mkdir()
    export = subprocess.Popen(
        [sys.executable, "-m", "keras_gcnprune.cli.main", "export", str(finished_run),
         "--saved-model", str(target / "sm"), "--tflite", str(target / "m.tflite")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(target.rglob(".gcnprune/partial/*")):
        assert export.poll() is None and time.monotonic() < deadline, "no staging folder seen"
        time.sleep(0.05)
    export.send_signal(signal.SIGTERM)
    code = export.wait(timeout=120)
    assert not list(target.rglob(".gcnprune/partial"))  # no staging left
    # On a loaded machine the signal can land after the SavedModel was written whole, or
    # after the export finished; what is left is then complete.
    left = {p.name for p in target.iterdir()} - {".gcnprune"}
    assert code == 128 + signal.SIGTERM and left <= {"sm"} or \
        code == 0 and left >= {"sm", "m.tflite"}
    assert "sm" not in left or (target / "sm" / "saved_model.pb").exists()


def _prune_from_start_ratio_3(out, method: str, budgets: str) -> dict:
    """Prunes with `method` to `budgets` from a start of 3 times the largest; its metrics."""
    pruned = CliRunner().invoke(main, [
        "prune", "--model", "attention_gcn", "--no-refit",
        "--method", method, "--budget", budgets, "--start-ratio", "3",
        "--epochs", "1", "--frames", "16", "--validation", "0", "--out", str(out)])
    assert pruned.exit_code == 0, pruned.output
    assert "start: attention_gcn {" in pruned.output
    assert "--start-ratio 10" not in pruned.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert abs(metrics["parameters"] - 4500) < 0.3 * 4500
    return metrics


def test_prune_to_a_budget_from_a_model_sized_by_the_start_ratio(tmp_path):
    metrics = _prune_from_start_ratio_3(tmp_path / "start", "magnitude", "1500")
    assert metrics["nonzero_parameters"] == 1500
    options = json.loads((tmp_path / "start/run.json").read_text())["config"]["model_options"]
    assert options["heads"] < 8


def test_prune_mrmp_to_budgets_from_a_model_sized_by_the_largest(tmp_path):
    metrics = _prune_from_start_ratio_3(tmp_path / "start", "mrmp", "1500,900")
    kept = sorted(entry["nonzero_parameters"] for entry in metrics["rates"].values())
    assert kept == pytest.approx([900, 1500], rel=0.005)


def test_every_choice_list_is_the_librarys_constant_not_a_copy():
    from pathlib import Path

    cli = Path(__file__).resolve().parents[2] / "cli"
    copies = [f"{path.name}:{number}" for path in sorted(cli.glob("*.py"))
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if "click.Choice([" in line]
    assert copies == []
    from keras_gcnprune.pruning.callbacks import SUPERVISION

    supervision = next(p for p in main.commands["prune"].params if p.name == "supervision")
    assert tuple(supervision.type.choices) == tuple(SUPERVISION)


def test_train_without_options_fits_the_default_family_on_three_streams_and_refits(tmp_path):
    from keras_gcnprune.training import TrainConfig, load_run

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--epochs", "1", "--frames", "16", "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    assert "Training twice" in result.output and "final model refit on all" in result.output
    model, info = load_run(out)
    assert info.config["model"] == TrainConfig.model and model.input_shape[-1] == 9
    assert info.streams == ("joint", "bone", "motion")
    metrics = json.loads((out / "metrics.json").read_text())
    selection = json.loads((out / "selection" / "metrics.json").read_text())
    assert metrics["validation_accuracy"] == selection["validation_accuracy"]
    assert metrics["train_samples"] == selection["train_samples"] + selection["validation_samples"]
