import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner
from migrate_runs import migrate
from results_page import write_docs

from keras_gcnprune.bench import AccuracyBench, run_accuracy
from keras_gcnprune.bench.export import ExportBench, run_export
from keras_gcnprune.bench.progress import Progress
from keras_gcnprune.cli.main import main
from keras_gcnprune.outputs import OutputConflictError, OutputFolder
from tests.conftest import BENCHMARKS, FAST, SMALL, held_by_another_process

BENCH = AccuracyBench(**{**SMALL, "refit": True},
                      dataset="synthetic", methods=("dense", "magnitude", "mrmp"),
                      rates=(0.5, 0.9), seeds=1, epochs=1, unseen=(0.7,))


class Interrupted(Exception):
    pass


def quiet(total):
    import io

    return Progress(total, stream=io.StringIO())


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, run_accuracy(BENCH, out, command="test", progress=quiet(4))


def test_plan_trains_mrmp_once_and_every_other_method_once_per_rate():
    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp", "mrmp"),
                          rates=(0.99, 0.9), seeds=2)
    plan = bench.trainings(("fold1", "fold2"))
    assert [(t.name, t.protocol, t.seed) for t in plan[:5]] == [
        ("dense", "fold1", 0), ("tcp_0.9", "fold1", 0), ("tcp_0.99", "fold1", 0),
        ("mrmp_0.9_0.99", "fold1", 0), ("dense", "fold2", 0)]
    assert len(plan) == 16 and {t.seed for t in plan[8:]} == {1}
    assert bench.pruning(plan[3]).trained_rates() == (0.9, 0.99)
    assert bench.pruning(AccuracyBench(**SMALL, methods=("tcp_none",), rates=(0.9,))
                         .trainings(("x",))[0]).supervision == "none"


def test_band_stop_options_reach_the_trainings_rate_weights_with_their_rates():
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("dense", "mrmp"), rates=(0.99, 0.9),
                          rate_weights=(4.0, 1.0), self_distillation=0.5,
                          self_distillation_teacher="next", seeds=1)
    assert bench.rates == (0.9, 0.99) and bench.rate_weights == (1.0, 4.0)
    mrmp = bench.pruning(bench.trainings(("x",))[1])
    assert mrmp.rates == (0.9, 0.99) and mrmp.rate_weights == (1.0, 4.0)
    assert mrmp.self_distillation == 0.5 and mrmp.self_distillation_teacher == "next"
    assert mrmp.consistent_extraction
    ranked = AccuracyBench(**SMALL, methods=("srmp",), rates=(0.9,), consistent_extraction=False)
    assert not ranked.pruning(ranked.trainings(("x",))[0]).consistent_extraction
    with pytest.raises(ValueError, match="rate_weights=.* applies to mrmp only: add it to methods"):
        AccuracyBench(**SMALL, methods=("tcp",), rates=(0.9,), rate_weights=(1.0,))
    with pytest.raises(ValueError, match="self_distillation=1.0 applies to mrmp only"):
        AccuracyBench(**SMALL, methods=("srmp",), rates=(0.9,), self_distillation=1.0)
    with pytest.raises(ValueError, match="rate_weights must be 2 positive numbers"):
        AccuracyBench(**SMALL, methods=("mrmp",), rates=(0.9, 0.99), rate_weights=(1.0,))


def test_supervision_strength_reaches_every_tcp_training_and_only_those():
    bench = AccuracyBench(**SMALL, methods=("magnitude", "tcp", "tcp_accessibility", "tcp_block"),
                          rates=(0.9,), supervision_strength=0.1, seeds=1)
    strengths = {t.method: bench.pruning(t).supervision_strength
                 for t in bench.trainings(("x",))}
    assert strengths == {"magnitude": 0.03, "tcp": 0.1, "tcp_accessibility": 0.1,
                         "tcp_block": 0.1}
    with pytest.raises(ValueError, match="applies to tcp, .* only: add one of them to methods, "
                                         "or leave it 0.03"):
        AccuracyBench(**SMALL,
                      methods=("magnitude", "srmp"), rates=(0.9,), supervision_strength=0.1)
    with pytest.raises(ValueError, match="strength must be a number >= 0, got -1"):
        AccuracyBench(**SMALL, methods=("tcp",), rates=(0.9,), supervision_strength=-1.0)


def test_small_dense_trains_once_per_rate_at_the_weights_of_that_rates_pruned_models(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import budget_at_rate, build_model
    from keras_gcnprune.training.sizing import weights_of

    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("tcp", "small_dense", "dense"),
                          rates=(0.9, 0.98), seeds=1, distill=True)
    plan = bench.trainings(("cross_subject",))
    shapes = ["", "_heads1", "_heads2", "_heads4"]
    assert [t.name for t in plan] == ["dense", "tcp_0.9", "tcp_0.98", *(
        f"small_dense_{rate}{shape}" for rate in ("0.9", "0.98") for shape in shapes)]
    dataset = load_dataset("synthetic")
    dense = bench.train_config(plan[0], dataset, tmp_path)
    assert dense.distillation is None and dense.model_options == {}
    for training in plan[3:]:
        config = bench.train_config(training, dataset, tmp_path)
        assert config.pruning is None
        assert config.distillation.teacher == str(plan[0].run_dir(tmp_path))
        budget = budget_at_rate(build_model(dense, dataset), training.rate)
        smallest = all(config.model_options[k] == 1 for k in ("head_channels", "graph_channels"))
        assert abs(weights_of(config, dataset) - budget) < 0.3 * budget or smallest, training.name
        if training.variant:
            assert config.model_options["heads"] == int(training.variant[len("heads"):])
    with pytest.raises(ValueError, match="distill=True uses the dense runs: add dense"):
        AccuracyBench(**SMALL, methods=("tcp",), rates=(0.9,), distill=True)


def test_a_wider_model_is_pruned_to_the_budgets_of_its_rates_and_small_dense_matches_them(
        tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import budget_at_rate, build_model
    from keras_gcnprune.training.sizing import weights_of

    wide = {"heads": 16, "head_channels": 16}
    bench = AccuracyBench(**SMALL, dataset="synthetic", model_options=wide, rates=(0.99,), seeds=1,
                          methods=("dense", "tcp", "small_dense"))
    dataset = load_dataset("synthetic")
    dense, tcp, small = (bench.train_config(t, dataset, tmp_path)
                         for t in bench.trainings(("cross_subject",))[:3])
    assert dense.model_options == tcp.model_options == wide
    budget = budget_at_rate(build_model(dense, dataset), 0.99)
    assert budget > budget_at_rate(build_model(replace(dense, model_options={}), dataset), 0.99)
    assert abs(weights_of(small, dataset) - budget) < 0.3 * budget
    assert small.model_options["heads"] < 16


def test_from_dense_starts_pruning_from_the_dense_run_and_doubles_small_dense(tmp_path):
    from keras_gcnprune.data import load_dataset

    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp", "small_dense"),
                          rates=(0.9,), seeds=1, epochs=5, from_dense=True)
    dense, tcp, small, *_ = bench.trainings(("cross_subject",))
    dataset = load_dataset("synthetic")
    assert bench.train_config(dense, dataset, tmp_path).initial_model is None
    assert bench.train_config(tcp, dataset, tmp_path).initial_model == \
        str(dense.run_dir(tmp_path) / "model.keras")
    assert bench.train_config(small, dataset, tmp_path).epochs == 10
    assert replace(bench, distill=True).train_config(small, dataset, tmp_path).epochs == 5
    with pytest.raises(ValueError, match="from_dense=True uses the dense runs"):
        AccuracyBench(**SMALL, methods=("tcp",), rates=(0.9,), from_dense=True)


@pytest.mark.parametrize("options,message", [
    ({"methods": ("dense", "l1")}, "Unknown methods ['l1']"),
    ({"rates": (0.9, 1.0)}, "rates must be in (0, 1)"),
    ({"rates": tuple(i / 1000 for i in range(1, 1000))}, "999 rates given; at most 64"),
    ({"seeds": 0}, "seeds and epochs must be at least 1"),
])
def test_bad_settings_are_refused_with_the_value(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        AccuracyBench(**SMALL, **options)


def test_records_summary_and_files(finished):
    out, results = finished
    records = results.records
    # dense, magnitude at 0.5 and 0.9, mrmp at 0.5 and 0.9 and unseen 0.7
    assert sorted((r["method"], r["rate"], bool(r.get("unseen"))) for r in records) == [
        ("dense", 0.0, False), ("magnitude", 0.5, False), ("magnitude", 0.9, False),
        ("mrmp", 0.5, False), ("mrmp", 0.7, True), ("mrmp", 0.9, False)]
    for r in records:
        # mrmp's extracted models keep exactly the count asked for
        assert abs(r["realized_rate"] - r["rate"]) < (1e-3 if r["method"] == "mrmp" else 0.02)
        assert {"disconnected_fraction", "dead_channels", "train_time_s", "device"} <= set(r)
        assert 0 < r["nonzero_parameters"] <= r["parameters"]
        assert r["nonzero_parameters"] <= r["compacted_parameters"] <= r["parameters"]
        assert 0 < r["compacted_nonzero_parameters"] <= r["nonzero_parameters"]
        if r["method"] == "dense":
            assert r["compacted_nonzero_parameters"] == r["nonzero_parameters"]
        assert r["compacted_macs"] > 0
        assert 0.0 <= r["validation_accuracy"] <= 1.0  # held out of the training split
    mrmp_times = {r["train_time_s"] for r in records if r["method"] == "mrmp"}
    assert len(mrmp_times) == 1  # one training for all its rates
    saved = json.loads((out / "results.json").read_text())
    assert saved["trainings"] == {"planned": 4, "finished": 4}
    assert saved["settings"]["protocols"] == ["cross_subject"]
    assert {"tensorflow", "keras", "device", "date"} <= set(saved["machine"])
    assert [(s["method"], s["rate"]) for s in saved["summary"]] == [
        ("dense", 0.0), ("magnitude", 0.5), ("magnitude", 0.9), ("mrmp", 0.5), ("mrmp", 0.9)]
    assert [r["rate"] for r in saved["mrmp_realized_rates"]] == [0.5, 0.7, 0.9]
    table = (out / "results.md").read_text()
    assert "| 90.0% |" in table and "no (unseen)" in table
    for plot in ("accuracy_vs_rate.png", "disconnected_vs_rate.png", "accuracy_vs_weights.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_finished_trainings(finished):
    out, results = finished

    def no_training(training):
        raise AssertionError(f"{training.label} trained again")

    again = run_accuracy(BENCH, out, command="test", progress=quiet(4),
                         on_training=no_training)
    assert again.summary == results.summary


def test_interrupted_benchmark_continues_where_it_stopped(tmp_path):
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("dense", "magnitude"), rates=(0.9,),
                          seeds=1, epochs=1)
    started = []

    def interrupt_second(training):
        started.append(training.name)
        if len(started) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        run_accuracy(bench, tmp_path, progress=quiet(2), on_training=interrupt_second)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["trainings"] == {"planned": 2, "finished": 1}
    dense_metrics = tmp_path / "runs/dense/cross_subject/seed0/metrics.json"
    written = dense_metrics.stat().st_mtime_ns
    trained = []
    results = run_accuracy(bench, tmp_path, progress=quiet(2),
                           on_training=lambda t: trained.append(t.name))
    assert trained == ["magnitude_0.9"]
    assert dense_metrics.stat().st_mtime_ns == written
    assert [r["method"] for r in results.records] == ["dense", "magnitude"]


def test_other_settings_in_the_same_folder_are_refused(finished):
    out, _ = finished
    with pytest.raises(ValueError, match="epochs: 1 there, 3 now"):
        run_accuracy(replace(BENCH, epochs=3), out, progress=quiet(4))


def test_export_bench_uses_the_trained_runs(finished):
    out, _ = finished
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("dense", "magnitude"), rates=(0.9,),
                          seeds=1, epochs=1)
    assert bench  # the module fixture trained magnitude at 0.9 on the same settings
    results = run_export(ExportBench(rates=(0.9,), runs=str(out), rounds=1, invocations=2))
    rows = {(r["rate"], r["variant"]): r for r in results["rows"]}
    assert {r["method"] for r in results["rows"]} == {"dense", "magnitude"}
    assert set(rows) == {(0.0, "dense"), (0.9, "pruned"), (0.9, "compacted")}
    assert rows[(0.0, "dense")]["size_ratio"] == 1.0
    assert rows[(0.9, "compacted")]["bytes"] <= rows[(0.9, "pruned")]["bytes"]
    assert all(r["gpu_findings"] == 0 and r["max_abs_diff"] < 1e-4 for r in rows.values())


@pytest.fixture(scope="module")
def block_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("block_bench")
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("dense", "small_dense", "tcp_block"),
                          rates=(0.95,), seeds=1, epochs=1)
    return out, run_accuracy(bench, out, command="test", progress=quiet(6))


def test_tcp_block_is_compared_with_small_dense_at_compacted_weights(block_bench):
    out, results = block_bench
    records = {r["method"]: r for r in results.records if r["method"] != "small_dense"}
    dense, block = records["dense"], records["tcp_block"]
    assert (dense["compacted_parameters"], dense["compacted_macs"]) == (
        dense["parameters"], json.loads((out / "runs/dense/cross_subject/seed0/metrics.json")
                                        .read_text())["macs"])
    # blocks narrow the model far below dense; its live weights are among the compacted ones
    assert block["compacted_nonzero_parameters"] <= block["compacted_parameters"] \
        < dense["parameters"] / 4
    assert block["compacted_macs"] < dense["compacted_macs"] / 4
    assert "weights once compacted" in results.table
    assert (out / "accuracy_vs_compacted_weights.png").read_bytes()[:4] == b"\x89PNG"


def test_tcp_block_results_from_before_block_budget_are_not_resumed_at_compacted_sizes(
        block_bench, tmp_path):
    import shutil

    out = shutil.copytree(block_bench[0], tmp_path / "bench")
    saved = json.loads((out / "results.json").read_text())
    del saved["settings"]["block_budget"]  # they pruned tcp_block at the nominal rates
    (out / "results.json").write_text(json.dumps(saved))
    migrate([out])  # records that, as this project's kept results were
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("tcp_block",), rates=(0.95,), seeds=1,
                          epochs=1)
    with pytest.raises(ValueError, match="block_budget: 'nonzero' there, 'compacted' now"):
        run_accuracy(bench, out, progress=quiet(1))
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert ", at the other methods' rates (so its compacted model's weights are not their " \
        "nonzero weights)." in page


@pytest.mark.parametrize("start_ratio", [None, 4])
def test_tcp_block_prunes_to_the_rate_whose_compacted_model_has_the_budget(
        tmp_path, start_ratio):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import block_rate_for_budget, budget_at_rate, build_model

    dataset = load_dataset("synthetic")
    rates = {}
    for block_budget in ("compacted", "nonzero"):
        bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp", "tcp_block"),
                              rates=(0.95,), seeds=1, start_ratio=start_ratio,
                              block_density=1.0, block_budget=block_budget)
        dense, tcp, block = (bench.train_config(t, dataset, tmp_path)
                             for t in bench.trainings(("cross_subject",)))
        assert block.model_options == tcp.model_options  # the same start
        rates[block_budget] = block.pruning.rate, tcp.pruning.rate
        budget = budget_at_rate(build_model(dense, dataset), 0.95)
    assert rates["nonzero"][0] == rates["nonzero"][1] == rates["compacted"][1]
    assert rates["compacted"][0] == block_rate_for_budget(build_model(block, dataset), budget)
    assert rates["compacted"][0] != rates["compacted"][1]
    with pytest.raises(ValueError, match="block_budget must be one of compacted, nonzero, "
                                         "macs, got 'kept'"):
        AccuracyBench(**SMALL, block_budget="kept")


def test_a_macs_budget_sizes_tcp_block_and_small_dense_to_a_share_of_the_dense_macs(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.reports import model_costs
    from keras_gcnprune.training import block_rate_for_budget, build_model, width_matched_options

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "small_dense",
                                                                 "tcp_block"),
                          rates=(0.9,), seeds=1, block_budget="macs")
    configs = {t.method + t.variant: bench.train_config(t, dataset, tmp_path)
               for t in bench.trainings(("cross_subject",))}
    budget = round(0.1 * model_costs(build_model(configs["dense"], dataset))["macs"])
    assert configs["tcp_block"].pruning.rate == block_rate_for_budget(
        build_model(configs["dense"], dataset), budget, cost="macs", at_most=True)
    assert configs["small_dense"].model_options == width_matched_options(
        configs["dense"], dataset, budget, cost="macs")
    small = model_costs(build_model(configs["small_dense"], dataset))["macs"]
    assert abs(small - budget) < 0.25 * budget
    with pytest.raises(ValueError, match="block_budget='macs' applies to tcp_block, "
                                         "small_dense only"):
        AccuracyBench(**SMALL, methods=("dense", "tcp"), rates=(0.9,), block_budget="macs")


def test_from_dense_tcp_block_rates_are_found_on_the_dense_run_it_starts_from(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.reports import model_costs
    from keras_gcnprune.training import block_rate_for_budget, build_model, load_model_file

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp_block"),
                          rates=(0.8,), seeds=1, from_dense=True, block_budget="macs")
    dense, pruned = bench.trainings(("cross_subject",))
    config = bench.train_config(dense, dataset, tmp_path)
    # a dense run whose channels differ from a new model's: the rate must follow the run
    run = dense.run_dir(tmp_path)
    run.mkdir(parents=True)
    build_model(replace(config, model_options={"graph_channels": 64}), dataset).save(
        run / "model.keras")
    budget = round(0.2 * model_costs(build_model(config, dataset))["macs"])
    rate = bench.train_config(pruned, dataset, tmp_path).pruning.rate
    assert rate == block_rate_for_budget(load_model_file(run / "model.keras"), budget,
                                         cost="macs", at_most=True)
    assert rate != block_rate_for_budget(build_model(config, dataset), budget, cost="macs",
                                         at_most=True)


def test_stgcns_small_dense_models_are_also_shallower_each_at_the_same_macs(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.reports import model_costs
    from keras_gcnprune.training import build_model

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**{**SMALL, "model": "stgcn"}, dataset="synthetic",
                          methods=("dense", "small_dense"), rates=(0.8,), seeds=1,
                          block_budget="macs")
    plan = bench.trainings(("cross_subject",))
    assert [t.name for t in plan] == ["dense", "small_dense_0.8", "small_dense_0.8_blocks3",
                                      "small_dense_0.8_blocks2"]
    configs = [bench.train_config(t, dataset, tmp_path) for t in plan]
    budget = 0.2 * model_costs(build_model(configs[0], dataset))["macs"]
    for config, depth in zip(configs[1:], (4, 3, 2)):
        assert len(config.model_options["widths"]) == len(config.model_options.get(
            "strides", (1,) * 4)) == depth
        assert abs(model_costs(build_model(config, dataset))["macs"] - budget) < 0.25 * budget


def test_cli_accuracy_block_budget_macs_reaches_the_settings_and_the_page(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "tcp_block",
        "--rates", "0.8", "--seeds", "1", "--epochs", "1", "--block-budget", "macs",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["settings"]["block_budget"] == "macs"
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert "prunes to the rate at which its compacted model keeps 1 - rate of the dense " \
        "model's MACs, and small_dense's widths are matched to those MACs" in page
    assert "leads over the small dense model of the same MACs (small)" in page
    refused = CliRunner().invoke(main, ["bench", "accuracy", "--block-budget", "flops"])
    assert refused.exit_code == 2 and "--block-budget" in refused.output


def test_export_bench_times_compacted_tcp_block_against_the_chosen_small_dense(block_bench):
    out, results = block_bench
    exported = run_export(ExportBench(runs=str(out), methods=("small_dense", "tcp_block"),
                                      rounds=1, invocations=2))
    rows = {(r["method"], r["variant"]): r for r in exported["rows"]}
    assert set(rows) == {("dense", "dense"), ("small_dense", "dense"),
                         ("tcp_block", "pruned"), ("tcp_block", "compacted")}
    chosen = next(r for r in results.records if r["method"] == "small_dense"
                  and r["nonzero_parameters"] == next(
                      s for s in results.summary if s["method"] == "small_dense")[
                          "nonzero_parameters"])
    assert rows[("small_dense", "dense")]["parameters"] == chosen["parameters"]
    assert rows[("tcp_block", "compacted")]["parameters"] == next(
        r for r in results.records if r["method"] == "tcp_block")["compacted_parameters"]


def test_export_bench_names_the_missing_run(finished):
    out, _ = finished
    with pytest.raises(FileNotFoundError, match="tcp_0.9"):
        run_export(ExportBench(rates=(0.9,), runs=str(out), methods=("tcp",)))


def test_docs_page_is_generated_from_the_results(finished, tmp_path):
    out, _ = finished
    page = write_docs([out], tmp_path / "docs" / "results.md", command="gcnprune bench docs x")
    text = page.read_text()
    assert "\n### Synthetic hand gestures: accuracy against pruning rate" in text
    assert "Command: `test`" in text and "gcnprune bench docs x" in text
    assert f"![accuracy against rate](results/{out.name}/accuracy_vs_rate.png)" in text
    assert (f"![accuracy against compacted weights](results/{out.name}/"
            "accuracy_vs_compacted_weights.png)") in text
    assert "Partial" not in text
    copied = tmp_path / "docs" / "results" / out.name
    assert json.loads((copied / "results.json").read_text())["benchmark"] == "accuracy"
    assert (copied / "accuracy_vs_rate.png").exists()


def test_docs_choose_each_budgets_model_across_benchmarks_of_the_same_models(finished,
                                                                              tmp_path):
    import shutil

    out, _ = finished
    copies = {}
    for name, change in (("late", {"ramp": [0.1, 0.6]}), ("longer", {"epochs": 5})):
        copies[name] = shutil.copytree(out, tmp_path / name)
        saved = json.loads((copies[name] / "results.json").read_text())
        saved["settings"].update(change)
        (copies[name] / "results.json").write_text(json.dumps(saved))
    page = write_docs([out, copies["longer"], copies["late"]], tmp_path / "page.md").read_text()
    parts = re.findall(r"^## .*$", page, flags=re.MULTILINE)
    sections = re.findall(r"^### .*$", page, flags=re.MULTILINE)
    assert parts == ["## Synthetic hand gestures"]
    # the budget tables first; the longer training is not compared with the others
    assert sections[:2] == [
        "### Synthetic hand gestures: the best model within a budget across 2 benchmarks",
        "### Synthetic hand gestures: the best model within a budget across 1 benchmark"]
    assert len(sections) == 5
    across = page.split(sections[0])[1].split(sections[1])[0]
    assert f"[results/{out.name}](results/{out.name}/results.json), " \
        "[results/late](results/late/results.json)" in across
    # the smallest budgets no model fits are left out
    assert "| budget | magnitude | mrmp |\n|---|---|---|\n| 20% (5,144) |" in across
    # neither small_dense, tcp nor srmp to compare with: only the lead over dense
    assert "| budget | best pruning method over dense |\n|---|---|\n| 20% (5,144) |" in across


def test_a_models_pruning_setting_is_named_in_a_few_words():
    from dataclasses import asdict

    from results_page import _pruning_label

    default = asdict(AccuracyBench())
    assert _pruning_label(default, "tcp") == _pruning_label(default, "tcp_block") == "default"
    changed = {**default, "start_ratio": 10.0, "ramp": [0.1, 0.6], "distill": True,
               "block_density": 0.5, "block_budget": "nonzero"}
    assert _pruning_label(changed, "srmp") == "from 10x, distilled, ramp 10-60%"
    assert _pruning_label(changed, "tcp_block") == \
        "from 10x, distilled, ramp 10-60%, density 0.5, nominal rate"
    stronger = {**default, "supervision_strength": 0.1}
    assert _pruning_label(stronger, "tcp") == "supervision strength 0.1"
    assert _pruning_label(stronger, "magnitude") == "default"
    mrmp = {**changed, "rates_per_step": 2, "rate_weights": [1.0, 2.5],
            "consistent_extraction": False}
    assert _pruning_label(mrmp, "mrmp") == "from 10x, distilled, ramp 10-60%, ranked " \
        "extraction, 2 rates per step, rate weights 1/2.5"


def test_cli_accuracy_and_docs(tmp_path):
    runner = CliRunner()
    out = tmp_path / "bench"
    result = runner.invoke(main, ["bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods",
                                  "dense,tcp", "--rates", "0.9", "--seeds", "1", "--epochs",
                                  "1", "--option", "heads=2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| 90.0% |" in result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["command"].startswith("gcnprune ")
    assert saved["settings"]["epochs"] == 1 and saved["settings"]["methods"] == ["dense", "tcp"]
    assert saved["settings"]["model_options"] == {"heads": 2}
    run = json.loads((out / "runs/tcp_0.9/cross_subject/seed0/run.json").read_text())
    assert run["config"]["model_options"] == {"heads": 2}
    page = tmp_path / "results.md"
    subprocess.run([sys.executable, str(BENCHMARKS / "results_page.py"), str(out), "--to",
                    str(page)], check=True, capture_output=True)
    assert "tcp top-1 %" in page.read_text()


def test_cli_refuses_unknown_methods_and_folders_without_results(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["bench", "accuracy", *FAST, "--dataset", "synthetic",
                                  "--methods", "dense,l1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "Unknown methods ['l1']" in result.output
    page = subprocess.run([sys.executable, str(BENCHMARKS / "results_page.py"), str(tmp_path)],
                          capture_output=True, text=True)
    assert page.returncode == 1 and "results.json does not exist" in page.stderr


def test_a_rerun_with_fewer_methods_keeps_the_other_records(finished, tmp_path):
    import shutil

    original, results = finished
    out = shutil.copytree(original, tmp_path / "bench")
    fewer = replace(BENCH, methods=("magnitude", "dense"), rates=(0.9,))
    again = run_accuracy(fewer, out, progress=quiet(1),
                         on_training=lambda t: pytest.fail(f"{t.label} trained again"))
    saved = json.loads((out / "results.json").read_text())

    def runs(records):
        return sorted((r["method"], r["rate"], r["test_accuracy"]) for r in records)

    assert runs(saved["records"]) == runs(results.records)
    assert sorted(again.summary, key=str) == sorted(results.summary, key=str)
    assert saved["settings"]["methods"] == ["dense", "magnitude", "mrmp"]  # in METHODS' order
    assert "magnitude top-1" in again.table
    with pytest.raises(ValueError, match=r"holds a benchmark with other settings \(epochs: 1 "
                                         r"there, 2 now\)"):
        run_accuracy(replace(fewer, epochs=2, protocols=("other",)), out, progress=quiet(1))


def test_results_from_before_a_new_setting_count_as_its_default(finished, tmp_path):
    import shutil

    original, results = finished
    out = shutil.copytree(original, tmp_path / "bench")
    saved = json.loads((out / "results.json").read_text())
    for setting in ("distill", "from_dense", "ramp", "block_budget"):
        del saved["settings"][setting]
    (out / "results.json").write_text(json.dumps(saved))
    again = run_accuracy(replace(BENCH, methods=("dense",)), out, progress=quiet(1),
                         on_training=lambda t: pytest.fail(f"{t.label} trained again"))
    assert len(again.records) == len(results.records)
    with pytest.raises(ValueError, match="distill: False there, True now"):
        run_accuracy(replace(BENCH, distill=True), out, progress=quiet(1))
    del saved["settings"]["consistent_extraction"]  # mrmp kept its largest-ranked weights
    saved["settings"]["ramp"] = list(BENCH.ramp)  # absent, migrating would record the old one
    (out / "results.json").write_text(json.dumps(saved))
    migrate([out])  # records that, as this project's kept results were
    with pytest.raises(ValueError, match="consistent_extraction: False there, True now"):
        run_accuracy(replace(BENCH, methods=("dense",)), out, progress=quiet(1))
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert "dense, magnitude, mrmp, ranked extraction\n" in page
    assert "the mrmp models keep the largest-ranked weights of each budget" in page


def test_a_run_copied_into_a_benchmark_of_another_extraction_is_extracted_not_retrained(
        finished, tmp_path, monkeypatch):
    import shutil

    import keras

    original, results = finished
    run = "runs/mrmp_0.5_0.9/cross_subject/seed0"
    shutil.copytree(original / run, tmp_path / run)
    stale = tmp_path / run / "records.json"  # the records of the other extraction go
    stale.write_text(json.dumps({"records": [{**r, "test_accuracy": -1.0} for r in
                                             json.loads(stale.read_text())["records"]]}))
    fitted = []
    monkeypatch.setattr(keras.Model, "fit", lambda *args, **kwargs: fitted.append(args))
    ranked = run_accuracy(replace(BENCH, methods=("mrmp",), consistent_extraction=False),
                          tmp_path, progress=quiet(1))
    assert not fitted
    pruning = json.loads((tmp_path / run / "run.json").read_text())["config"]["pruning"]
    assert pruning["consistent_extraction"] is False
    mrmp = [r for r in results.records if r["method"] == "mrmp"]
    assert sorted(r["rate"] for r in ranked.records) == sorted(r["rate"] for r in mrmp)
    records = json.loads(stale.read_text())["records"]
    assert [r["test_accuracy"] for r in records] == [r["test_accuracy"] for r in ranked.records]
    assert min(r["test_accuracy"] for r in records) >= 0


def test_a_second_benchmark_process_on_the_same_folder_is_refused(tmp_path):
    with held_by_another_process(tmp_path) as pid, \
            pytest.raises(OutputConflictError, match=f"being written by another gcnprune "
                                                     f"command \\(process {pid}\\)"):
        run_accuracy(BENCH, tmp_path, progress=quiet(4))
    assert not (tmp_path / "runs").exists()  # nothing trained by the refused process
    with OutputFolder(tmp_path).locked():
        pass  # released when its holder was killed


def test_budgets_become_the_rates_at_which_the_benchmarks_model_keeps_them(tmp_path):
    from keras_gcnprune.bench.accuracy import rates_for_budgets
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import budget_at_rate, build_model

    dataset = load_dataset("synthetic")
    narrow = AccuracyBench(**SMALL,
                           dataset="synthetic", model_options={"heads": 2}, methods=("dense",
                           "tcp"), seeds=1)
    budgets = (3000, 1200)
    rates = rates_for_budgets(narrow, budgets, dataset)
    dense = narrow.train_config(narrow.trainings(("cross_subject",))[0], dataset, tmp_path)
    assert dense.model_options == {"heads": 2}
    assert [budget_at_rate(build_model(dense, dataset), r) for r in rates] == list(budgets)
    default = rates_for_budgets(replace(narrow, model_options={}), budgets, dataset)
    assert all(d > r for d, r in zip(default, rates))  # the wider model prunes more
    with pytest.raises(ValueError, match="A budget of 10 nonzero weights is out of reach"):
        rates_for_budgets(narrow, (10,), dataset)


def test_cli_accuracy_with_budgets_prunes_to_them(tmp_path):
    runner = CliRunner()
    out = tmp_path / "bench"
    args = ["bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "dense,magnitude",
            "--seeds", "1", "--epochs", "1", "--option", "heads=2", "--out", str(out)]
    result = runner.invoke(main, [*args, "--budgets", "3000"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    pruned = [r for r in saved["records"] if r["method"] == "magnitude"]
    assert [r["nonzero_parameters"] for r in pruned] == [3000]
    result = runner.invoke(main, [*args, "--budgets", "3000", "--rates", "0.9"])
    assert result.exit_code == 2 and "Give --budgets or --rates, not both." in result.output
    result = runner.invoke(main, [*args, "--budgets", "5"])
    assert result.exit_code == 2 and "out of reach" in result.output


def test_start_ratio_prunes_a_model_that_many_times_each_budget_down_to_that_budget(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import budget_at_rate, build_model
    from keras_gcnprune.training.sizing import weights_of

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp", "magnitude"),
                          rates=(0.9, 0.98), seeds=1, start_ratio=4)
    plan = bench.trainings(("cross_subject",))
    dense = bench.train_config(plan[0], dataset, tmp_path)
    assert dense.model_options == {} and dense.pruning is None
    starts = {}
    for training in plan[1:]:
        config = bench.train_config(training, dataset, tmp_path)
        budget = budget_at_rate(build_model(dense, dataset), training.rate)
        assert abs(weights_of(config, dataset) - 4 * budget) < 0.3 * 4 * budget
        assert budget_at_rate(build_model(config, dataset), config.pruning.rate) == budget
        starts.setdefault(training.rate, config.model_options)
        assert config.model_options == starts[training.rate]  # one start per budget
    assert starts[0.98]["heads"] < starts[0.9]["heads"] <= 8


def test_start_ratio_never_starts_from_a_wider_model(tmp_path):
    from keras_gcnprune.data import load_dataset

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**SMALL, dataset="synthetic", methods=("dense", "tcp"),
                          rates=(0.5, 0.9), seeds=1, start_ratio=4)
    configs = {training.rate: bench.train_config(training, dataset, tmp_path)
               for training in bench.trainings(("cross_subject",))[1:]}
    assert configs[0.5].model_options == {} and configs[0.5].pruning.rate == 0.5  # 4x: wider
    assert configs[0.9].model_options["heads"] < 8  # 4x the budget at 90%: smaller


def test_start_ratio_starts_mrmp_from_that_many_times_its_largest_budget(tmp_path):
    from keras_gcnprune.data import load_dataset
    from keras_gcnprune.training import budget_at_rate, build_model
    from keras_gcnprune.training.sizing import weights_of

    dataset = load_dataset("synthetic")
    bench = AccuracyBench(**SMALL,
                          dataset="synthetic", methods=("dense", "mrmp"), rates=(0.9, 0.98),
                          seeds=1, start_ratio=4)
    dense_training, mrmp_training = bench.trainings(("cross_subject",))
    dense = build_model(bench.train_config(dense_training, dataset, tmp_path), dataset)
    config = bench.train_config(mrmp_training, dataset, tmp_path)
    budgets = [budget_at_rate(dense, rate) for rate in (0.9, 0.98)]
    assert abs(weights_of(config, dataset) - 4 * budgets[0]) < 0.3 * 4 * budgets[0]
    start = build_model(config, dataset)
    assert [budget_at_rate(start, rate) for rate in config.pruning.rates] == budgets
    assert mrmp_training.name == "mrmp_0.9_0.98"  # named by the benchmark's rates


@pytest.mark.parametrize("options, message", [
    ({"start_ratio": 1.0}, "start ratio must be above 1"),
    ({"start_ratio": 4, "methods": ("dense", "mrmp"), "unseen": (0.95,)},
     "give them as rates instead"),
    ({"start_ratio": 4, "from_dense": True}, "start_ratio and from_dense exclude each other"),
])
def test_start_ratio_refuses_what_it_cannot_do(options, message):
    with pytest.raises(ValueError, match=message):
        AccuracyBench(**SMALL, **{"methods": ("dense", "tcp"), "rates": (0.9,), **options})


def test_cli_accuracy_start_ratio_is_recorded_with_each_runs_start(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "dense,tcp,mrmp",
        "--rates", "0.9,0.95", "--seeds", "1", "--epochs", "1", "--start-ratio", "3", "--out",
        str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["start_ratio"] == 3
    mrmp = sorted((r["rate"], r["nonzero_parameters"]) for r in results["records"]
                  if r["method"] == "mrmp")
    tcp = sorted((r["rate"], r["nonzero_parameters"]) for r in results["records"]
                 if r["method"] == "tcp")
    assert [rate for rate, _ in mrmp] == [0.9, 0.95]  # the benchmark's rates name the budgets
    assert [kept for _, kept in mrmp] == pytest.approx([kept for _, kept in tcp], rel=0.005)
    run = json.loads((out / "runs/tcp_0.95/cross_subject/seed0/run.json").read_text())
    assert run["config"]["model_options"]["heads"] < 8
    assert run["config"]["pruning"]["rate"] < 0.95
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert "Every pruning method starts from the model of the family about 3 times each " \
        "rate's budget" in page
    assert "mrmp from that many times the largest budget" in page
    assert "dense, tcp, mrmp, pruned from 3 times each budget\n" in page


def test_cli_accuracy_block_density_fills_whole_channels(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "tcp_block", "--rates",
        "0.9", "--seeds", "1", "--epochs", "1", "--block-density", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["block_density"] == 1.0
    run = json.loads((out / "runs/tcp_block_0.9/cross_subject/seed0/run.json").read_text())
    assert run["config"]["pruning"]["block_density"] == 1.0
    assert "`tcp_block` fills 1 of its channel blocks (whole channels) and prunes to the " \
        "rate at which its compacted model has the weights the other methods keep nonzero at " \
        "each rate, not to the rate itself." in \
        write_docs([out], tmp_path / "page.md").read_text()


def test_cli_accuracy_ramp_reaches_every_pruning_run_and_the_page(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "dense,magnitude,mrmp",
        "--rates", "0.95,0.9", "--rate-weights", "3,1", "--self-distillation", "0.5",
        "--self-distillation-teacher", "next", "--seeds", "1", "--epochs", "1", "--ramp", "0.1,0.6",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "results.json").read_text())["settings"]
    assert settings["ramp"] == [0.1, 0.6] and settings["rate_weights"] == [1.0, 3.0]
    for run in ("magnitude_0.9", "mrmp_0.9_0.95"):
        config = json.loads((out / f"runs/{run}/cross_subject/seed0/run.json").read_text())
        assert (config["config"]["pruning"]["begin"], config["config"]["pruning"]["end"]) == \
            (0.1, 0.6)
    assert config["config"]["pruning"]["rate_weights"] == [1.0, 3.0]
    assert config["config"]["pruning"]["self_distillation"] == 0.5
    assert config["config"]["pruning"]["self_distillation_teacher"] == "next"
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert "Pruning ramps from 10% to 60% of the training, the rest fine-tunes the final " \
        "masks; the mrmp models keep the best-ranked subnetwork of each budget whose every " \
        "weight lies on an input-to-output path; each mrmp training step weighs its rates' " \
        "losses 1, 3 and distils each sparser rate from the next denser one (weight 0.5)." in page
    assert "dense, magnitude, mrmp, pruning ramp 10% to 60%, mrmp self-distillation 0.5 from the " \
        "next denser rate\n" in page


@pytest.mark.parametrize("ramp", ["0.6,0.3", "0.3", "a,b"])
def test_cli_accuracy_refuses_a_ramp_that_does_not_fit_the_training(tmp_path, ramp):
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "tcp", "--rates", "0.9",
        "--ramp", ramp, "--out", str(tmp_path / "bench")])
    assert result.exit_code == 2 and "--ramp" in result.output


def test_cli_accuracy_supervision_strength_reaches_tcp_runs_and_the_page(tmp_path):
    out = tmp_path / "bench"
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST,
        "--dataset", "synthetic", "--methods", "magnitude,tcp", "--rates",
        "0.9", "--seeds", "1", "--epochs", "1", "--supervision-strength", "0.1",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["settings"][
        "supervision_strength"] == 0.1
    run = json.loads((out / "runs/tcp_0.9/cross_subject/seed0/run.json").read_text())
    assert run["config"]["pruning"]["supervision_strength"] == 0.1
    page = write_docs([out], tmp_path / "page.md").read_text()
    assert "magnitude, tcp, TCP supervision strength 0.1\n" in page
    assert "TCP's supervision strength is 0.1." in page


def test_cli_accuracy_refuses_a_block_density_above_one(tmp_path):
    result = CliRunner().invoke(main, [
        "bench", "accuracy", *FAST, "--dataset", "synthetic", "--methods", "tcp_block", "--rates",
        "0.9", "--block-density", "1.5", "--out", str(tmp_path / "bench")])
    assert result.exit_code == 2 and "--block-density" in result.output
