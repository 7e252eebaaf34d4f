import io
import subprocess

import pytest

from keras_gcnprune.bench.progress import Progress, format_duration
from keras_gcnprune.bench.results import (
    accuracy_tables,
    budget_leads,
    budget_table,
    chosen_on_validation,
    mrmp_realized_rates,
    shape_size,
    small_dense_shapes,
    source_commit,
    summarise_accuracy,
    training_time_table,
    winners,
)


def record(method, rate, accuracy, realized=None, train_time=10.0, **extra):
    return {"method": method, "rate": rate, "test_accuracy": accuracy,
            "realized_rate": rate if realized is None else realized,
            "disconnected_fraction": 0.1, "dead_channels": 2, "kept_weights": 100,
            "nonzero_parameters": 120, "train_time_s": train_time, **extra}


def test_progress_counts_skipped_trained_and_failed_runs_and_estimates_from_trained_only(
        monkeypatch):
    now = [100.0]
    monkeypatch.setattr("keras_gcnprune.bench.progress.time.perf_counter", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(5, stream=stream, width=5)
    progress.skip("a")
    assert progress.eta_seconds() is None
    progress.start("b")  # at 100 s
    progress.start("c")  # a second worker
    now[0] = 130.0
    progress.done("b")
    assert progress.finished == 2 and progress.trained == 1
    # 30 s of wall time per run trained (at 130 s), three runs left: 90 s
    assert progress.eta_seconds() == pytest.approx(90.0)
    progress.fail("c")
    assert (progress.finished, progress.failed) == (3, 1)
    assert progress.line("x").startswith("[###..] 3/5 runs, ~1m00s left | x")
    assert "c: FAILED" in stream.getvalue()
    assert stream.getvalue().count("\n") == 5  # not a terminal: one line per event


@pytest.mark.parametrize("seconds,text", [(12, "12s"), (247, "4m07s"), (11100, "3h05m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_summary_is_mean_and_population_std_over_folds_and_seeds():
    rows = summarise_accuracy([record("tcp", 0.9, 0.8), record("tcp", 0.9, 0.6),
                               record("tcp", 0.99, 0.5), record("dense", 0.0, 0.9)])
    by_key = {(r["method"], r["rate"]): r for r in rows}
    assert by_key[("tcp", 0.9)]["top1_mean"] == 70.0
    assert by_key[("tcp", 0.9)]["top1_std"] == 10.0
    assert by_key[("tcp", 0.9)]["runs"] == 2
    assert by_key[("tcp", 0.99)]["top1_std"] == 0.0
    assert by_key[("dense", 0.0)]["top1_mean"] == 90.0


def test_tables_show_leads_over_the_small_dense_model_and_magnitude_and_time_ratio_to_dense():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, train_time=10.0, nonzero_parameters=10000),
        record("small_dense", 0.99, 0.8), record("magnitude", 0.99, 0.5),
        record("tcp", 0.99, 0.75, train_time=15.0)])
    table = accuracy_tables(summary, ["dense", "small_dense", "magnitude", "tcp"], [0.99])
    assert "Dense: **90.00 ± 0.00**" in table
    assert ("| 99.0% | 80.00 ± 0.00 (mag. +30.00) | 50.00 ± 0.00 (small -30.00) "
            "| 75.00 ± 0.00 (small -5.00, mag. +25.00) |") in table
    assert "| 1% (100) |" not in table  # no model fits: the budget is left out
    assert "| 2% (200) | 80.00 ± 0.00 (120) | 50.00 ± 0.00 (120) | 75.00 ± 0.00 (120) |" in table
    times = training_time_table(summary, ["dense", "magnitude", "tcp"])
    assert "| tcp | 15.0 | 1.50x |" in times


def test_the_compacted_budget_table_compares_the_narrowed_models_with_their_macs():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, nonzero_parameters=10000, compacted_parameters=10000,
               compacted_macs=90000),
        record("small_dense", 0.95, 0.6, compacted_parameters=480, compacted_macs=4000),
        record("tcp_block", 0.95, 0.7, compacted_parameters=500, compacted_macs=3000),
        record("tcp_block", 0.95, 0.8, compacted_parameters=520, compacted_macs=3200),
        # a run from before compacted sizes were measured: not in the compacted table
        record("magnitude", 0.95, 0.9, compacted_parameters=None, compacted_macs=None)])
    rows = {r["method"]: r for r in summary}
    assert (rows["tcp_block"]["compacted_parameters"], rows["tcp_block"]["compacted_macs"]) \
        == (510.0, 3100.0)
    assert rows["magnitude"]["compacted_parameters"] is None
    table = accuracy_tables(summary, ["dense", "small_dense", "magnitude", "tcp_block"], [0.95])
    compacted = table[table.index("weights once compacted"):]
    assert "| budget | small_dense | tcp_block |" in compacted
    assert ("| 5% (500) | 60.00 ± 0.00 (480 / 4,000) | 75.00 ± 5.00 (510 / 3,100) |"
            in compacted)
    # the nonzero-weight table still has every method
    assert "| budget | small_dense | magnitude | tcp_block |" in table


def test_no_compacted_table_with_a_single_method_measured_compacted():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, nonzero_parameters=10000, compacted_parameters=10000,
               compacted_macs=90000),
        record("small_dense", 0.95, 0.6, compacted_parameters=480, compacted_macs=4000)])
    assert "weights once compacted" not in accuracy_tables(summary, ["dense", "small_dense"],
                                                            [0.95])


def test_realized_rates_worst_offset_over_folds():
    rows = mrmp_realized_rates([
        record("mrmp", 0.9, 0.8, realized=0.905), record("mrmp", 0.9, 0.8, realized=0.897),
        record("mrmp", 0.93, 0.8, realized=0.941, unseen=True), record("tcp", 0.9, 0.8)])
    assert rows == [
        {"rate": 0.9, "unseen": False, "realized_min": 0.897, "realized_max": 0.905,
         "worst_offset_pp": 0.5},
        {"rate": 0.93, "unseen": True, "realized_min": 0.941, "realized_max": 0.941,
         "worst_offset_pp": 1.1},
    ]


def test_winners_name_the_best_method_and_whether_its_lead_exceeds_the_spread():
    summary = summarise_accuracy([
        record("magnitude", 0.9, 0.70), record("magnitude", 0.9, 0.80),
        record("tcp", 0.9, 0.78), record("tcp", 0.9, 0.80),
        record("magnitude", 0.99, 0.2), record("tcp", 0.99, 0.5)])
    text = winners(summary, ["magnitude", "tcp"], [0.9, 0.99])
    assert "- 90.0%: **tcp** 79.00, +4.00 over magnitude (within the spread, std 5.00)" in text
    assert "- 99.0%: **tcp** 50.00, +30.00 over magnitude (one run: no spread to judge the lead " \
        "by)" in text
    spread_beaten = summarise_accuracy([
        record("magnitude", 0.9, 0.70), record("magnitude", 0.9, 0.72),
        record("tcp", 0.9, 0.80), record("tcp", 0.9, 0.82)])
    assert "(beyond the spread, std 1.00)" in winners(spread_beaten, ["magnitude", "tcp"], [0.9])
    assert winners(summary, ["tcp"], [0.9, 0.99]) == ""
    alone = accuracy_tables(summary, ["tcp"], [0.9])
    assert "Best method" not in alone and "| tcp | 10.0 | no dense run |" in alone


def test_source_commit_names_the_checkout_and_says_when_it_was_changed(tmp_path):
    assert source_commit(tmp_path) is None  # not a git checkout: an installed package
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert source_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")
    assert source_commit(tmp_path) == head + "+dirty"


def test_the_live_weight_budget_table_counts_what_a_pruned_model_needs():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, nonzero_parameters=10000,
               compacted_nonzero_parameters=10000),
        record("small_dense", 0.99, 0.5, nonzero_parameters=120,
               compacted_nonzero_parameters=120),
        # the same nonzero weights, but half of them bias of dead channels or dangling
        record("magnitude", 0.99, 0.4, nonzero_parameters=120, compacted_nonzero_parameters=60),
        record("tcp", 0.99, 0.45, nonzero_parameters=120, compacted_nonzero_parameters=100)])
    table = accuracy_tables(summary, ["dense", "small_dense", "magnitude", "tcp"], [0.99])
    live = table[table.index("Best top-1 % within a budget of live weights"):]
    assert "| budget | small_dense | magnitude | tcp |" in live
    assert "| 1% (100) |  | 40.00 ± 0.00 (60) | 45.00 ± 0.00 (100) |" in live
    # in nonzero weights, no method fits 1% of dense
    nonzero = table[table.index("within a budget of nonzero weights"):
                    table.index("within a budget of live weights")]
    assert "| 1% (100) |" not in nonzero and "| 2% (200) | 50.00" in nonzero


def test_within_a_budget_each_method_is_chosen_on_validation_and_every_small_dense_shape_competes():
    records = [
        record("dense", 0.0, 0.9, nonzero_parameters=10000, validation_accuracy=0.9),
        # tcp: the lighter model tests better, the heavier one validates better
        record("tcp", 0.99, 0.70, nonzero_parameters=100, validation_accuracy=0.60),
        record("tcp", 0.98, 0.65, nonzero_parameters=200, validation_accuracy=0.62),
        # small_dense: "heads2" was chosen for neither rate, yet fits the 2% budget
        record("small_dense", 0.99, 0.40, nonzero_parameters=95, validation_accuracy=0.40,
               variant=""),
        record("small_dense", 0.98, 0.50, nonzero_parameters=190, validation_accuracy=0.50,
               variant=""),
        record("small_dense", 0.98, 0.55, nonzero_parameters=205, validation_accuracy=0.70,
               variant="heads2")]
    chosen = [r for r in records if r.get("variant") != "heads2"]
    table = accuracy_tables(summarise_accuracy(chosen), ["dense", "small_dense", "tcp"],
                            [0.98, 0.99], small_dense_shapes(records))
    nonzero = table[table.index("within a budget of nonzero weights"):]
    assert "each method's model chosen on validation" in nonzero
    assert "| 1% (100) | 40.00 ± 0.00 (95) | 70.00 ± 0.00 (100) |" in nonzero
    assert "| 2% (200) | 55.00 ± 0.00 (205; heads2) | 65.00 ± 0.00 (200) |" in nonzero
    # without the shapes, only the chosen small dense models compete
    alone = accuracy_tables(summarise_accuracy(chosen), ["dense", "small_dense", "tcp"],
                            [0.98, 0.99])
    assert "| 2% (200) | 50.00 ± 0.00 (190) | 65.00 ± 0.00 (200) |" in alone


def test_a_budget_of_runs_without_validation_is_chosen_on_test_and_says_so():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, nonzero_parameters=10000),
        record("tcp", 0.99, 0.70, nonzero_parameters=100),
        record("tcp", 0.98, 0.75, nonzero_parameters=200)])
    assert summary[1]["validation_mean"] is None
    table = accuracy_tables(summary, ["dense", "tcp"], [0.98, 0.99])
    assert "| 1% (100) | 70.00 ± 0.00 (100) |" in table
    assert "| 2% (200) | 75.00 ± 0.00 (200, chosen on test) |" in table


def test_the_small_dense_shape_of_the_best_validation_accuracy_is_kept_per_fold_and_seed():
    def small(variant, validation, test, protocol="a", weights=100):
        return {"method": "small_dense", "rate": 0.9, "protocol": protocol, "seed": 0,
                "variant": variant, "validation_accuracy": validation, "test_accuracy": test,
                "nonzero_parameters": weights}

    records = [small("", 0.5, 0.9), small("heads1", 0.7, 0.6), small("heads2", 0.7, 0.8),
               small("heads4", 0.9, 0.9, weights=150),  # heavier than the budget allows
               small("", 0.4, 0.3, protocol="b"), {"method": "tcp", "rate": 0.9}]
    kept = chosen_on_validation(records)
    assert [(r["method"], r.get("variant"), r.get("protocol")) for r in kept] == [
        ("small_dense", "heads1", "a"), ("small_dense", "", "b"), ("tcp", None, None)]


def test_small_dense_shapes_matched_on_macs_compete_by_their_macs_not_their_weights():
    def small(variant, validation, weights, macs):
        return {"method": "small_dense", "rate": 0.9, "protocol": "a", "seed": 0,
                "variant": variant, "validation_accuracy": validation, "test_accuracy": 0.5,
                "nonzero_parameters": weights, "compacted_macs": macs}

    # a shallower shape spends its MACs on more weights
    records = [small("", 0.5, 100, 1000), small("blocks2", 0.8, 120, 1010),
               small("blocks3", 0.9, 110, 1500)]  # more MACs than the budget allows
    assert [r["variant"] for r in chosen_on_validation(records)] == ["blocks3"]
    assert [r["variant"] for r in chosen_on_validation(
        records, shape_size("macs"))] == ["blocks2"]


def test_budget_leads_compare_the_models_chosen_on_validation_losses_included():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.9, nonzero_parameters=10000),
        record("small_dense", 0.99, 0.40, validation_accuracy=0.40, nonzero_parameters=110),
        record("small_dense", 0.95, 0.70, validation_accuracy=0.60, nonzero_parameters=480),
        record("magnitude", 0.95, 0.72, validation_accuracy=0.70, nonzero_parameters=500),
        record("tcp", 0.95, 0.69, validation_accuracy=0.71, nonzero_parameters=500),
        # the better test, the worse validation: not chosen
        record("srmp", 0.95, 0.80, validation_accuracy=0.50, nonzero_parameters=500),
        record("mrmp", 0.99, 0.45, validation_accuracy=0.45, nonzero_parameters=100),
        record("srmp", 0.99, 0.50, validation_accuracy=0.44, nonzero_parameters=100)])
    leads = budget_leads(summary, ["dense", "small_dense", "magnitude", "tcp", "srmp", "mrmp"])
    assert "| budget | best pruning method over small_dense | best pruning method over dense | " \
        "tcp over magnitude | mrmp over srmp |" in leads
    assert "| 1% (100) | +5.00 (mrmp 45.00 against 40.00) | -45.00 (mrmp 45.00 against 90.00) " \
        "|  | -5.00 (45.00 against 50.00) |" in leads
    assert "| 5% (500) | -1.00 (tcp 69.00 against 70.00) | -21.00 (tcp 69.00 against 90.00) | " \
        "-3.00 (69.00 against 72.00) | -35.00 (45.00 against 80.00) |" in leads
    assert budget_leads(summary, ["dense", "small_dense"]) == ""


def test_budget_leads_in_macs_compare_only_the_models_that_compaction_makes_faster():
    summary = summarise_accuracy([
        record("dense", 0.0, 0.90, compacted_macs=1000),
        record("small_dense", 0.8, 0.84, validation_accuracy=0.80, compacted_macs=210),
        record("tcp_block", 0.8, 0.89, validation_accuracy=0.85, compacted_macs=205),
        # unstructured: its zeros are scattered, compaction keeps every MAC
        record("tcp", 0.8, 0.91, validation_accuracy=0.90, compacted_macs=1000)])
    leads = budget_leads(summary, ["dense", "small_dense", "tcp", "tcp_block"],
                         size="compacted_macs")
    assert leads.startswith("Test leads of the models chosen above (MACs per sequence once "
                            "compacted), in points:")
    assert "| budget | best pruning method over small_dense | best pruning method over dense |" \
        in leads
    assert "| 20% (200) | +5.00 (tcp_block 89.00 against 84.00) | -1.00 (tcp_block 89.00 " \
        "against 90.00) |" in leads
    assert "| 10% (100) |" not in leads  # no model fits


def test_a_budget_cell_chosen_among_validation_ties_names_the_tied_models_tests():
    def row(method, top1, validation, weights):
        return {"method": method, "top1_mean": top1, "top1_std": 0.0,
                "validation_mean": validation, "nonzero_parameters": weights}

    rows = [{"method": "dense", "nonzero_parameters": 10000},
            row("tcp", 70.0, 60.0, 500), row("tcp", 65.0, 60.0, 400), row("tcp", 80.0, 50.0, 300),
            # one model in two benchmarks (a copied run) ties with itself: no tie to report
            row("magnitude", 70.0, 60.0, 500), row("magnitude", 70.0, 60.0, 500)]
    table = budget_table(rows, ["dense", "magnitude", "tcp"])
    assert "| 5% (500) | 70.00 ± 0.00 (500) | 70.00 ± 0.00 (500, tied on validation with " \
        "65.00) |" in table
    assert "| 2% (200) |" not in table  # nothing fits: no choice, no tie
