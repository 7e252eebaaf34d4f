"""Benchmark results on disk: `results.json`, summaries over folds and seeds, Markdown tables."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_gcnprune.outputs import OutputFolder

RESULTS_FILE = "results.json"
TABLE_FILE = "results.md"


def write_json(path: Path, data: dict) -> None:
    """Writes `data` whole or not at all, as the package's own file in its folder (see
    `keras_gcnprune.outputs`: a file of that name the package did not write is refused)."""
    with OutputFolder(path.parent).locked() as out:
        out.write_text(path.name, json.dumps(data, indent=2) + "\n")


def save_results(out_dir: str | Path, benchmark: str, command: str, settings: dict,
                 table: str, **payload) -> dict[str, Path]:
    """Writes `results.json` (benchmark name, command, settings, machine and `payload`) and
    the Markdown `table` as `results.md` into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    files = {"results": out_dir / RESULTS_FILE, "table": out_dir / TABLE_FILE}
    with OutputFolder(out_dir).locked() as out:
        write_json(files["results"], {"benchmark": benchmark, "command": command,
                                      "settings": settings, "machine": machine(), **payload})
        out.write_text(TABLE_FILE, table)
    return files


def source_commit(folder: str | Path) -> str | None:
    """The git commit of the checkout holding `folder` (`+dirty` when tracked files changed),
    or None outside a git checkout (an installed package)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine() -> dict:
    """The machine, libraries, source commit and date a benchmark ran with."""
    from keras_gcnprune.training.run import environment

    return {
        **environment(),
        "git_commit": source_commit(Path(__file__).parent),
        "processor": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "system": platform.system(),
        "date": time.strftime("%Y-%m-%d"),
    }


def load_results(out_dir: str | Path) -> dict:
    """The `results.json` of a benchmark output folder, with a clear error when it is not one."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {out_dir} is not the output folder of a "
                                "finished benchmark.")
    return json.loads(path.read_text())


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def summarise_accuracy(records: list[dict]) -> list[dict]:
    """Mean and standard deviation over folds and seeds of every (method, rate).

    Args:
        records: One dict per (method, rate, protocol, seed) with `test_accuracy`,
            `realized_rate`, `disconnected_fraction`, `dead_channels`, `kept_weights`,
            `nonzero_parameters` and `train_time_s`.

    Returns:
        One row per (method, rate), in the order they first appear, top-1 in percent.

    Example:
        >>> rows = summarise_accuracy([
        ...     {"method": "tcp", "rate": 0.9, "test_accuracy": 0.8, "realized_rate": 0.9,
        ...      "disconnected_fraction": 0.0, "dead_channels": 1, "kept_weights": 10,
        ...      "nonzero_parameters": 20, "train_time_s": 2.0},
        ...     {"method": "tcp", "rate": 0.9, "test_accuracy": 0.6, "realized_rate": 0.9,
        ...      "disconnected_fraction": 0.0, "dead_channels": 3, "kept_weights": 10,
        ...      "nonzero_parameters": 20, "train_time_s": 4.0}])
        >>> rows[0]["top1_mean"], rows[0]["top1_std"], rows[0]["dead_channels"]
        (70.0, 10.0, 2.0)
    """
    groups: dict[tuple[str, float], list[dict]] = {}
    for record in records:
        groups.setdefault((record["method"], record["rate"]), []).append(record)
    rows = []
    for (method, rate), runs in groups.items():
        top1 = np.array([r["test_accuracy"] for r in runs]) * 100
        rows.append({
            "method": method,
            "rate": rate,
            "runs": len(runs),
            "top1_mean": round(float(top1.mean()), 2),
            "top1_std": round(float(top1.std()), 2),
            **{key: round(_mean([r[key] for r in runs]), 4)
               for key in ("realized_rate", "disconnected_fraction", "dead_channels",
                           "kept_weights", "nonzero_parameters", "train_time_s")},
            "validation_mean": _percent_if_all([r.get("validation_accuracy") for r in runs]),
            **{key: _mean_if_all([r.get(key) for r in runs]) for key in COMPACTED_KEYS},
        })
    return rows


def shape_size(block_budget: str) -> str:
    """The record key by which a benchmark's small dense shapes are matched: the compacted
    MACs where it sized them by MACs (`block_budget` "macs"), else the nonzero weights.

    Example:
        >>> shape_size("macs"), shape_size("compacted")
        ('compacted_macs', 'nonzero_parameters')
    """
    return "compacted_macs" if block_budget == "macs" else "nonzero_parameters"


def chosen_on_validation(records: list[dict], size: str = "nonzero_parameters") -> list[dict]:
    """The records with, of the small_dense shapes of each (rate, protocol, seed), only the one
    of the best validation accuracy (the first on a tie) among those at most `BUDGET_SLACK`
    larger than the smallest by `size` (the record key they were matched on, `shape_size`: a
    shape that cannot get as small as the budget does not compete): the baseline is the best
    small dense model one could choose without the test split."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["method"] == "small_dense":
            groups.setdefault((record["rate"], record["protocol"], record["seed"]),
                              []).append(record)
    chosen = set()
    for group in groups.values():
        smallest = min(r[size] for r in group)
        eligible = [r for r in group if r[size] <= BUDGET_SLACK * smallest]
        chosen.add(id(max(eligible, key=lambda r: r["validation_accuracy"] or 0.0)))
    return [r for r in records if r["method"] != "small_dense" or id(r) in chosen]


def accuracy_summary(records: list[dict], size: str = "nonzero_parameters") -> list[dict]:
    """The summary (`summarise_accuracy`) of a benchmark's trained runs (rates a model was not
    trained for left out), with, of the small dense shapes, the one chosen on validation for
    each run (`chosen_on_validation`, the shapes compared by `size`)."""
    return summarise_accuracy(chosen_on_validation([r for r in records if not r.get("unseen")],
                                                   size))


def small_dense_shapes(records: list[dict]) -> list[dict]:
    """Summary rows (`summarise_accuracy`'s) of every small_dense shape at every rate, each
    naming its shape (`variant`, "" for the one that scales every width), so that a budget can
    be met by whichever shape fits it, not only by the one chosen for a rate.

    Example:
        >>> rows = small_dense_shapes([
        ...     {"method": "small_dense", "rate": 0.9, "variant": "heads2", "test_accuracy": 0.5,
        ...      "realized_rate": 0.9, "disconnected_fraction": 0.0, "dead_channels": 0,
        ...      "kept_weights": 90, "nonzero_parameters": 100, "train_time_s": 1.0},
        ...     {"method": "tcp", "rate": 0.9, "test_accuracy": 0.7, "realized_rate": 0.9,
        ...      "disconnected_fraction": 0.0, "dead_channels": 0, "kept_weights": 90,
        ...      "nonzero_parameters": 100, "train_time_s": 1.0}])
        >>> [(r["method"], r["variant"], r["top1_mean"]) for r in rows]
        [('small_dense', 'heads2', 50.0)]
    """
    of_method = [r for r in records if r["method"] == "small_dense"]
    shapes = []
    for variant in dict.fromkeys(r.get("variant", "") for r in of_method):
        shapes += [{**row, "variant": variant} for row in summarise_accuracy(
            [r for r in of_method if r.get("variant", "") == variant])]
    return shapes


COMPACTED_KEYS = ("compacted_parameters", "compacted_macs", "compacted_nonzero_parameters")


def _mean_if_all(values: list[float | None]) -> float | None:
    """The mean, or None when any run did not measure it."""
    return None if None in values else round(_mean(values), 1)


def _percent_if_all(values: list[float | None]) -> float | None:
    """The mean in percent, or None when any run did not measure it (runs from before the
    validation split)."""
    return None if None in values else round(100 * _mean(values), 2)


def _cell(rows: dict, method: str, rate: float, fmt) -> str:
    row = rows.get((method, rate))
    return "" if row is None else fmt(row)


BASELINES = (("small_dense", "small"), ("magnitude", "mag."))  # what leads are measured from


def accuracy_tables(summary: list[dict], methods: list[str], rates: list[float],
                    shapes: Sequence[dict] = ()) -> str:
    """Markdown: top-1 per rate and method (in brackets, the lead over the small dense model
    of the same weights and over magnitude pruning), disconnected fraction, dead channels and
    nonzero weights, the best of each method within budgets of dense's weights (`shapes`:
    `small_dense_shapes`' rows, so that every small dense shape competes there), and training
    time against dense."""
    rows = {(r["method"], r["rate"]): r for r in summary}
    pruned = [m for m in methods if m != "dense"]
    lines = ["| rate | " + " | ".join(f"{m} top-1 %" for m in pruned) + " |",
             "|---|" + "---|" * len(pruned)]
    if "dense" in methods and ("dense", 0.0) in rows:
        dense = rows[("dense", 0.0)]
        lines.insert(0, f"Dense: **{dense['top1_mean']:.2f} ± {dense['top1_std']:.2f}** "
                        f"({dense['runs']} runs).\n")

    def top1(method: str, rate: float):
        def fmt(row: dict) -> str:
            leads = [f"{name} {row['top1_mean'] - rows[(base, rate)]['top1_mean']:+.2f}"
                     for base, name in BASELINES if base != method and (base, rate) in rows]
            text = f"{row['top1_mean']:.2f} ± {row['top1_std']:.2f}"
            return text + (f" ({', '.join(leads)})" if leads else "")
        return fmt

    for rate in rates:
        lines.append(f"| {rate:.1%} | "
                     + " | ".join(_cell(rows, m, rate, top1(m, rate)) for m in pruned) + " |")
    lines += ["", "Disconnected fraction of kept weights / dead channels / nonzero weights "
                  "(biases and normalization included; realized rate of the pruned weights), "
                  "means:", "",
              "| rate | " + " | ".join(pruned) + " |", "|---|" + "---|" * len(pruned)]
    for rate in rates:
        lines.append(f"| {rate:.1%} | " + " | ".join(_cell(
            rows, m, rate, lambda r: f"{r['disconnected_fraction']:.1%} / "
                                     f"{r['dead_channels']:.1f} / "
                                     f"{r['nonzero_parameters']:,.0f} "
                                     f"({r['realized_rate']:.2%})") for m in pruned) + " |")
    best = winners(summary, pruned, rates)
    lines += ["", best] if best else []
    for size in BUDGET_SIZES:
        frontier = budget_table(summary, methods, size, shapes)
        lines += ["", frontier] if frontier else []
    lines += ["", training_time_table(summary, methods)]
    return "\n".join(lines) + "\n"


BUDGETS = (0.01, 0.02, 0.05, 0.10, 0.20, 0.50)  # of the dense model's size
BUDGET_SLACK = 1.1  # a model counts within a budget up to 10% over it


# What a budget counts: the weights a pruned model keeps; those it needs (kept weights and
# the biases and normalization of live channels: the nonzero weights of its compacted form);
# every weight of it narrowed to its live channels (`compact`), which is what its TFLite
# file holds; or the multiply-accumulates of that narrowed model.
BUDGET_SIZES = {
    "nonzero_parameters": "nonzero weights",
    "compacted_nonzero_parameters": "live weights (nonzero weights once compacted: dead "
                                    "channels' biases and normalization, and kept weights "
                                    "that reach no output, left out)",
    "compacted_parameters": "weights once compacted (every weight of the narrowed model, its "
                            "MACs per sequence after the slash)",
    "compacted_macs": "MACs per sequence once compacted (multiply-accumulates of the narrowed "
                      "model: what its speed follows)",
}


def budget_table(summary: list[dict], methods: list[str],
                 size: str = "nonzero_parameters", shapes: Sequence[dict] = ()) -> str:
    """Markdown: of each method's models of at most about each of `BUDGETS` of the dense model's
    size (`BUDGET_SLACK` over the budget allowed), the one of the best validation accuracy,
    with its test top-1 and size. Budgets no model fits, and methods with no model within any
    (unstructured pruning keeps every MAC of the dense model), are left out; empty without a
    dense run, and for compacted sizes without two methods within them (small_dense alone
    compares nothing).

    Args:
        summary: Rows of `summarise_accuracy`.
        methods: Methods to show (dense gives the budgets and is not shown).
        size: A key of `BUDGET_SIZES`: what a budget counts. Methods whose models were not
            measured in it (None) are left out.
        shapes: Rows of `small_dense_shapes`: when given, every small dense shape competes
            within a budget (its name after the size), not only those chosen for a rate.

    Returns:
        The table. A budget whose candidates were not all measured on validation (results from
        before the validation split) is chosen on test, and its cell is marked so.

    Example:
        >>> rows = [{"method": "dense", "rate": 0.0, "top1_mean": 90.0, "top1_std": 1.0,
        ...          "nonzero_parameters": 10000},
        ...         {"method": "tcp", "rate": 0.95, "top1_mean": 80.0, "top1_std": 2.0,
        ...          "validation_mean": 78.0, "nonzero_parameters": 520},
        ...         {"method": "tcp", "rate": 0.9, "top1_mean": 85.0, "top1_std": 2.0,
        ...          "validation_mean": 77.0, "nonzero_parameters": 1000}]
        >>> print(budget_table(rows, ["dense", "tcp"]))
        Best top-1 % within a budget of nonzero weights (share of dense's 10,000), each \
method's model chosen on validation:
        <BLANKLINE>
        | budget | tcp |
        |---|---|
        | 5% (500) | 80.00 ± 2.00 (520) |
        | 10% (1,000) | 80.00 ± 2.00 (520) |
        | 20% (2,000) | 80.00 ± 2.00 (520) |
        | 50% (5,000) | 80.00 ± 2.00 (520) |
    """
    dense, candidates = _budget_candidates(summary, methods, size, shapes)
    measured = [m for m, rows in candidates.items() if rows]
    if dense is None or dense.get(size) is None or not measured or (
            size != "nonzero_parameters" and len(measured) < 2):
        return ""
    lines = [f"Best top-1 % within a budget of {BUDGET_SIZES[size]} (share of dense's "
             f"{dense[size]:,.0f}), each method's model chosen on validation:", "",
             "| budget | " + " | ".join(measured) + " |", "|---|" + "---|" * len(measured)]
    for label, fits in _fits_by_budget(dense, candidates, size):
        cells = [_budget_cell(fits[m], size) for m in measured]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _budget_candidates(summary: list[dict], methods: list[str], size: str,
                       shapes: Sequence[dict]) -> tuple[dict | None, dict[str, list[dict]]]:
    """`(the dense row, each method's rows measured in `size` within the largest budget)`,
    every small dense shape competing where `shapes` are given."""
    dense = next((r for r in summary if r["method"] == "dense"), None)
    if dense is None or dense.get(size) is None:
        return dense, {}
    largest = BUDGET_SLACK * max(BUDGETS) * dense[size]
    return dense, {m: [r for r in (shapes if m == "small_dense" and shapes else summary)
                       if r["method"] == m and r.get(size) is not None and r[size] <= largest]
                   for m in methods if m != "dense"}


def _fits_by_budget(dense: dict, candidates: dict[str, list[dict]], size: str):
    """For each of `BUDGETS` (shares of `dense`'s `size`) that some candidate fits: its table
    label and each method's candidates within it (up to `BUDGET_SLACK` over it)."""
    for share in BUDGETS:
        budget = share * dense[size]
        fits = {m: [r for r in rows if r[size] <= BUDGET_SLACK * budget]
                for m, rows in candidates.items()}
        if any(fits.values()):
            yield f"{share:.0%} ({budget:,.0f})", fits


# The comparisons every pruning claim is judged by: (what leads, over what).
LEADS = (("best pruning method", "small_dense"), ("best pruning method", "dense"),
         ("tcp", "magnitude"), ("mrmp", "srmp"))


def budget_leads(summary: list[dict], methods: list[str], shapes: Sequence[dict] = (),
                 size: str = "nonzero_parameters") -> str:
    """Markdown: at each budget, the test lead of the models `budget_table` chooses on
    validation: of the best pruning method (the chosen pruned model of the best validation
    accuracy) over the small dense model and over the dense model itself, of TCP over
    magnitude pruning and of MRMP over SRMP; a negative lead is a loss, shown as it is. Only
    comparisons made at some budget have a column; empty without any.

    Args:
        summary: Rows of `summarise_accuracy`.
        methods: Methods to compare (dense gives the budgets).
        shapes: Rows of `small_dense_shapes`, as for `budget_table`.
        size: A key of `BUDGET_SIZES`: what a budget counts.

    Returns:
        The table.

    Example:
        >>> rows = [{"method": "dense", "rate": 0.0, "top1_mean": 85.0,
        ...          "nonzero_parameters": 10000},
        ...         {"method": "tcp", "rate": 0.95, "top1_mean": 80.0, "top1_std": 2.0,
        ...          "validation_mean": 78.0, "nonzero_parameters": 500},
        ...         {"method": "magnitude", "rate": 0.95, "top1_mean": 81.0, "top1_std": 2.0,
        ...          "validation_mean": 77.0, "nonzero_parameters": 500}]
        >>> print(budget_leads(rows, ["dense", "magnitude", "tcp"]))
        Test leads of the models chosen above (nonzero weights), in points:
        <BLANKLINE>
        | budget | best pruning method over dense | tcp over magnitude |
        |---|---|---|
        | 5% (500) | -5.00 (tcp 80.00 against 85.00) | -1.00 (80.00 against 81.00) |
        | 10% (1,000) | -5.00 (tcp 80.00 against 85.00) | -1.00 (80.00 against 81.00) |
        | 20% (2,000) | -5.00 (tcp 80.00 against 85.00) | -1.00 (80.00 against 81.00) |
        | 50% (5,000) | -5.00 (tcp 80.00 against 85.00) | -1.00 (80.00 against 81.00) |
    """
    dense, candidates = _budget_candidates(summary, methods, size, shapes)
    if dense is None or dense.get(size) is None:
        return ""
    pruning = [m for m in candidates if m != "small_dense"]
    budget_rows = []
    for label, fits in _fits_by_budget(dense, candidates, size):
        chosen = {m: _chosen(fitting)[0] for m, fitting in fits.items()} | {"dense": dense}
        chosen["best pruning method"] = _chosen(
            [chosen[m] for m in pruning if chosen[m] is not None])[0]
        budget_rows.append((label, [_lead_cell(chosen.get(leader), chosen.get(baseline),
                                               leader == "best pruning method")
                                    for leader, baseline in LEADS]))
    made = [i for i in range(len(LEADS)) if any(cells[i] for _, cells in budget_rows)]
    if not made:
        return ""
    words = BUDGET_SIZES[size].split(" (")[0]
    lines = [f"Test leads of the models chosen above ({words}), in points:", "",
             "| budget | " + " | ".join(f"{LEADS[i][0]} over {LEADS[i][1]}" for i in made)
             + " |", "|---|" + "---|" * len(made)]
    lines += [f"| {label} | " + " | ".join(cells[i] for i in made) + " |"
              for label, cells in budget_rows]
    return "\n".join(lines)


def _lead_cell(first: dict | None, second: dict | None, named: bool) -> str:
    """`first`'s test lead over `second` (its method named where `named`); empty without
    both."""
    if first is None or second is None:
        return ""
    name = f"{first['method']} " if named else ""
    return (f"{first['top1_mean'] - second['top1_mean']:+.2f} ({name}"
            f"{first['top1_mean']:.2f} against {second['top1_mean']:.2f})")


def _chosen(fits: list[dict]) -> tuple[dict | None, bool]:
    """`(the model of the best validation accuracy, True)` among `fits`, or of the best test
    where one has none (`False`); `(None, True)` without any."""
    if not fits:
        return None, True
    on_validation = all(r.get("validation_mean") is not None for r in fits)
    return max(fits, key=lambda r: r["validation_mean" if on_validation else "top1_mean"]), \
        on_validation


def _budget_cell(fits: list[dict], size: str) -> str:
    """The fitting model of the best validation accuracy (of the best test where one has none)."""
    best, on_validation = _chosen(fits)
    if best is None:
        return ""
    shape = f"; {best['variant']}" if best.get("variant") else ""
    marker = "" if on_validation or len(fits) == 1 else ", chosen on test"
    # where models of another test score tie on validation, the order of the results chose
    ties = sorted({r["top1_mean"] for r in fits
                   if math.isclose(r["validation_mean"], best["validation_mean"])
                   and not math.isclose(r["top1_mean"], best["top1_mean"])}) \
        if on_validation else []
    if ties:
        marker += ", tied on validation with " + ", ".join(f"{t:.2f}" for t in ties)
    return (f"{best['top1_mean']:.2f} ± {best['top1_std']:.2f} "
            f"({_size_cell(best, size)}{shape}{marker})")


def _size_cell(row: dict, size: str) -> str:
    if size == "compacted_parameters" and row.get("compacted_macs") is not None:
        return f"{row[size]:,.0f} / {row['compacted_macs']:,.0f}"
    return f"{row[size]:,.0f}"


def winners(summary: list[dict], methods: list[str], rates: list[float]) -> str:
    """Markdown: the best method at each rate, its lead over the runner-up, and whether that
    lead is larger than the spread (the larger standard deviation of the two; with a single run
    of either there is none to judge by); empty when no rate has two methods to compare.

    Example:
        >>> rows = [{"method": "tcp", "rate": 0.9, "top1_mean": 80.0, "top1_std": 2.0, "runs": 3},
        ...         {"method": "magnitude", "rate": 0.9, "top1_mean": 75.0, "top1_std": 3.0,
        ...          "runs": 3}]
        >>> print(winners(rows, ["magnitude", "tcp"], [0.9]))
        Best method per rate:
        - 90.0%: **tcp** 80.00, +5.00 over magnitude (beyond the spread, std 3.00)
    """
    rows = {(r["method"], r["rate"]): r for r in summary}
    lines = ["Best method per rate:"]
    for rate in rates:
        ranked = sorted((rows[(m, rate)] for m in methods if (m, rate) in rows),
                        key=lambda r: -r["top1_mean"])
        if len(ranked) < 2:
            continue
        best, second = ranked[:2]
        lead = best["top1_mean"] - second["top1_mean"]
        lines.append(f"- {rate:.1%}: **{best['method']}** {best['top1_mean']:.2f}, "
                     f"{lead:+.2f} over {second['method']} ({_verdict(lead, best, second)})")
    return "\n".join(lines) if len(lines) > 1 else ""


def _verdict(lead: float, best: dict, second: dict) -> str:
    if min(best.get("runs", 2), second.get("runs", 2)) < 2:
        return "one run: no spread to judge the lead by"
    spread = max(best["top1_std"], second["top1_std"])
    return f"{'beyond' if lead > spread else 'within'} the spread, std {spread:.2f}"


def training_time_table(summary: list[dict], methods: list[str]) -> str:
    """Markdown: mean wall time of one training of each method (mrmp: one for all its rates)
    and its ratio to one dense training, measured in the same benchmark."""
    times = {}
    for method in methods:
        values = [r["train_time_s"] for r in summary if r["method"] == method]
        if values:
            times[method] = float(np.mean(values))
    dense = times.get("dense")
    lines = ["| method | one training (s) | ratio to dense |", "|---|---|---|"]
    for method, seconds in times.items():
        ratio = f"{seconds / dense:.2f}x" if dense else "no dense run"
        lines.append(f"| {method} | {seconds:.1f} | {ratio} |")
    return "\n".join(lines)


def mrmp_realized_rates(records: list[dict]) -> list[dict]:
    """Realized rates of mrmp models extracted at every rate, trained or unseen: min and max
    over folds and seeds, and the worst distance from the requested rate."""
    rows = []
    mrmp = [r for r in records if r["method"] == "mrmp"]
    for rate in sorted({r["rate"] for r in mrmp}):
        realized = [r["realized_rate"] for r in mrmp if r["rate"] == rate]
        rows.append({
            "rate": rate,
            "unseen": any(r.get("unseen") for r in mrmp if r["rate"] == rate),
            "realized_min": round(min(realized), 5),
            "realized_max": round(max(realized), 5),
            "worst_offset_pp": round(max(abs(x - rate) for x in realized) * 100, 3),
        })
    return rows


def realized_rates_table(rows: list[dict]) -> str:
    """Markdown: realized rates of the mrmp models extracted at each rate ("" when none)."""
    if not rows:
        return ""
    lines = ["Realized rates of MRMP models (one training per fold and seed) extracted at each "
             "rate, min..max over folds and seeds:", "",
             "| rate | trained | realized | worst offset (pp) |", "|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['rate']:.1%} | {'no (unseen)' if row['unseen'] else 'yes'} | "
                     f"{row['realized_min']:.2%}..{row['realized_max']:.2%} | "
                     f"{row['worst_offset_pp']:.2f} |")
    return "\n".join(lines) + "\n"
