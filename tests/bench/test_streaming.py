"""The streaming benchmark on a trained run: whole clips, streamed decisions, both runtimes."""

from click.testing import CliRunner

from keras_gcnprune.bench.streaming import StreamBench, run_stream, stream_table
from keras_gcnprune.cli.main import main
from keras_gcnprune.export import gpu_engine_missing
from tests.export.test_export import trained_run  # noqa: F401 (a module fixture)


def test_it_measures_the_stream_on_each_runtime(trained_run):  # noqa: F811
    results = run_stream(StreamBench(str(trained_run), dataset="synthetic", every=8))
    runtimes = results["runtimes"]
    assert set(runtimes) == ({"cpu"} if gpu_engine_missing() else {"cpu", "gpu"})
    frames_run = results["stream_frames"] - results["window"]
    assert runtimes["cpu"]["decisions"] == frames_run // 8 + 1
    # The raw-input file on whole clips is the Keras run with its Python preprocessing,
    # up to resampling before rather than after centring and scaling.
    assert abs(results["clip_accuracy"] - results["run_test_accuracy"]) <= 0.05
    if "gpu" in runtimes:
        assert results["cpu_gpu_agreement"] == 1.0
    assert "whole clips top-1" in stream_table(results)


def test_the_command_writes_results(tmp_path, trained_run):  # noqa: F811
    result = CliRunner().invoke(main, ["bench", "stream", str(trained_run), "--dataset",
                                       "synthetic", "--every", "16", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.md").is_file()


def test_the_tracks_rule_counts_found_gestures_and_false_positives():
    from keras_gcnprune.bench.streaming import detection_summary, score_detections
    from keras_gcnprune.data.formats.shrec21 import Gesture
    from keras_gcnprune.deploy import Detection

    gestures = [Gesture("TAP", 100, 120), Gesture("OK", 300, 400)]
    detections = [Detection("TAP", 0, 90, 81),  # 19 frames early: found
                  Detection("TAP", 0, 95, 85),  # a second detection of it: false positive
                  Detection("GRAB", 1, 310, 305),  # wrong class: false positive
                  Detection("OK", 2, 420, 401)]  # starts after the end: false positive
    counts = score_detections(detections, gestures)
    assert counts == {"gestures": 2, "found": 1, "false_positives": 3}
    summary = detection_summary([counts, {"gestures": 2, "found": 2, "false_positives": 0}])
    assert summary["detection_rate"] == 0.75 and summary["false_positives_per_sequence"] == 1.5
    assert summary["precision"] == 0.5 and summary["f1"] == round(2 * 0.5 * 0.75 / 1.25, 4)


def test_bench_detect_runs_the_exported_model_over_whole_recordings(tmp_path):
    import json

    from tests.data.test_formats import write_shrec21_zip

    data = write_shrec21_zip(tmp_path / "shrec.zip")
    runner = CliRunner()
    trained = runner.invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                   "--dataset", f"shrec21:{data}", "--epochs", "1",
                                   "--frames", "8", "--validation", "0", "--out",
                                   str(tmp_path / "run")])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(main, ["bench", "detect", str(tmp_path / "run"), "--threshold", "0",
                                  "--confirm", "1", "--out", str(tmp_path / "detect")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "detect" / "results.json").read_text())
    assert results["validation"]["sequences"] == 1 and results["validation"]["gestures"] == 1
    assert results["fit"]["sequences"] == 1 and results["choice"]["sequences"] == 0
    assert results["loop"] == {"window": 8, "lag": 4}
    # Threshold 0, confirm 1: some class tops the first decision, so something is reported.
    found = results["validation"]["found"] + results["validation"]["false_positives"]
    assert found >= 1 and results["segmented_accuracy"] in (0.0, 1.0)
