"""Pruning defaults chosen across datasets, each left out in turn: the method and ramp of
`gcnprune prune --rate`, and the method and start ratio of `prune --budget`.

For each dataset (its first protocol, one seed, the default ST-GCN on three streams, 80 epochs,
no refit, as docs/defaults.md chose the dense defaults), `gcnprune bench accuracy` prunes with
each method (`--methods`: unstructured TCP, `tcp`, and TCP in channel blocks, `tcp_block`, the
default) at each rate (or `--budgets`) and each candidate setting (`--candidates`: named sets
of `bench accuracy` options, by default the two ramps); then for each method, each dataset in
turn is held out, the candidate with the best validation accuracy averaged over the others is
chosen, and its test accuracy on the held-out dataset reported. With several methods, the
method is chosen the same way, each with its chosen setting: among the methods whose mean
validation accuracy is within `METHOD_TOLERANCE` points of the best, the one whose compacted
models keep the fewest MACs (the product is a model for a phone: at the same rate unstructured
TCP keeps nearly every MAC, and channel blocks are what compaction turns into speed).

    python benchmarks/pruning_defaults.py --methods tcp,tcp_block --page docs/pruning_defaults.md
    python benchmarks/pruning_defaults.py --methods tcp,tcp_block --budgets 5000 --candidates \
        "whole model=;start ratio 4=--start-ratio 4;start ratio 10=--start-ratio 10" \
        --page docs/start_ratio.md

Resumable: rerun the same command and finished trainings are skipped.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from dense_quality import leave_one_dataset_out
from recipes import chosen_recipe
from results_page import machine_line

from keras_gcnprune.bench.results import load_results

DATASETS = "sbu=fold1,jhmdb=split1,msr=cross_subject,shrec21=validation,landmarks=mod5"
CANDIDATES = "ramp 0.1,0.6=--ramp 0.1,0.6;ramp 0,0.3=--ramp 0,0.3"
# Methods this close in mean validation accuracy (points) are equally accurate; the one of
# fewest compacted MACs is chosen (the targets allow 1 point at 0.2x of the MACs).
METHOD_TOLERANCE = 1.0


def datasets(args: argparse.Namespace) -> dict[str, str]:
    """`--datasets` as {dataset spec: protocol}."""
    return dict(item.split("=") for item in args.datasets.split(","))


def candidates(args: argparse.Namespace) -> dict[str, list[str]]:
    """`--candidates` as {name: its `bench accuracy` options}."""
    named = dict(item.split("=", 1) for item in args.candidates.split(";"))
    return {name: shlex.split(options) for name, options in named.items()}


def sizes(args: argparse.Namespace) -> list[str]:
    """The `bench accuracy` options of the pruned sizes: `--budgets` or `--rates`."""
    return ["--budgets", args.budgets] if args.budgets else ["--rates", args.rates]


def bench_folder(out: Path, dataset: str, candidate: str) -> Path:
    name = candidate.replace(" ", "").replace(",", "-")
    return out / f"{dataset.replace(':', '_')}_{name}"


def run_benchmarks(args: argparse.Namespace) -> None:
    for dataset, protocol in datasets(args).items():
        for candidate, options in candidates(args).items():
            command = ["gcnprune", "bench", "accuracy", "--dataset", dataset, "--protocol",
                       protocol, "--methods", args.methods, *sizes(args), "--seeds",
                       str(args.seeds), "--epochs", str(args.epochs), "--no-refit", *options,
                       "--out", str(bench_folder(args.out, dataset, candidate)),
                       *shlex.split(args.bench_options)]
            print("$", shlex.join(command), flush=True)
            subprocess.run(command, check=True)


def summary_rows(args: argparse.Namespace) -> list[dict]:
    """One row per (dataset, method and candidate): validation and test accuracy averaged over
    the sizes, as `leave_one_dataset_out` takes them (the candidate named `recipe`)."""
    rows = []
    for dataset in datasets(args):
        for candidate in candidates(args):
            folder = bench_folder(args.out, dataset, candidate)
            if not (folder / "results.json").exists():
                continue
            records = load_results(folder)["records"]
            for method in args.methods.split(","):
                chosen = [r for r in records if r["method"] == method]
                if not chosen:
                    continue
                rows.append({
                    "dataset": dataset, "method": method, "recipe": f"{method} {candidate}",
                    "validation": 100 * sum(r["validation_accuracy"] for r in chosen)
                    / len(chosen),
                    "test": 100 * sum(r["test_accuracy"] for r in chosen) / len(chosen),
                    "test_std": 0.0, "runs": chosen})
    return rows


def method_choice(method: str, rows: list[dict]) -> list[str]:
    """Markdown lines: the candidate setting of `method` chosen with each dataset held out in
    turn, and the one chosen on every dataset's validation (the candidate for
    `PruningConfig`'s default, which every method shares)."""
    if not rows:
        return []
    chosen, averages = chosen_recipe(rows)
    held_out = leave_one_dataset_out(rows)[1:]  # under this method's own heading
    ranked = ", ".join(f"{recipe} {value:.2f}" for recipe, value in
                       sorted(averages.items(), key=lambda item: -item[1]))
    return [f"## {method}: the setting chosen without the dataset it is scored on", *held_out,
            f"**Chosen on every dataset's validation: `{chosen}`** (mean validation %: "
            f"{ranked}).", ""]


def dense_macs(run: dict) -> int:
    """The MACs of a pruned run's own architecture before compaction."""
    return json.loads((Path(run["run"]) / "metrics.json").read_text())["macs"]


def macs_ratio(row: dict) -> float:
    """The compacted models' MACs over their dense architecture's, averaged over the row's
    runs."""
    return float(np.mean([run["compacted_macs"] / dense_macs(run) for run in row["runs"]]))


def least_macs_within_tolerance(rows: list[dict]) -> tuple[str, dict[str, float]]:
    """The method of fewest compacted MACs among those within `METHOD_TOLERANCE` of the best
    validation accuracy averaged over the datasets, and that average of each method.

    Example:
        >>> rows = [{"method": "a", "validation": 90.0, "macs": 1.0},
        ...         {"method": "b", "validation": 89.5, "macs": 0.1}]
        >>> least_macs_within_tolerance(rows)
        ('b', {'a': 90.0, 'b': 89.5})
    """
    methods = dict.fromkeys(r["method"] for r in rows)
    accuracy = {m: float(np.mean([r["validation"] for r in rows if r["method"] == m]))
                for m in methods}
    macs = {m: float(np.mean([r["macs"] for r in rows if r["method"] == m])) for m in methods}
    close = [m for m in methods if accuracy[m] >= max(accuracy.values()) - METHOD_TOLERANCE]
    return min(close, key=macs.get), accuracy


def method_default(rows: list[dict]) -> list[str]:
    """Markdown lines: the method (each with its setting chosen on every dataset) chosen with
    each dataset held out in turn by `least_macs_within_tolerance`, and on every dataset."""
    settled = {method: chosen_recipe([r for r in rows if r["method"] == method])[0]
               for method in dict.fromkeys(r["method"] for r in rows)}
    rows = [{**r, "macs": macs_ratio(r)} for r in rows if r["recipe"] == settled[r["method"]]]
    lines = ["## The method, chosen without the dataset it is scored on", "",
             f"Each method with its chosen setting. Methods within {METHOD_TOLERANCE:g} point of "
             "the best mean validation accuracy of the other datasets are equally accurate; of "
             "those, the one whose compacted models keep the fewest MACs is chosen.", "",
             "| held out | mean validation % of the others | chosen | its test top-1 % here | "
             "its compacted MACs here |", "|---|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        chosen, accuracy = least_macs_within_tolerance([r for r in rows
                                                        if r["dataset"] != dataset])
        here = next(r for r in rows if (r["dataset"], r["method"]) == (dataset, chosen))
        means = ", ".join(f"{method} {value:.2f}" for method, value in accuracy.items())
        lines.append(f"| {dataset} | {means} | {chosen} | {here['test']:.2f} | "
                     f"{here['macs']:.3f}x |")
    chosen, accuracy = least_macs_within_tolerance(rows)
    macs = ", ".join(f"{method} {np.mean([r['macs'] for r in rows if r['method'] == method]):.3f}x"
                     for method in accuracy)
    return [*lines, "", f"**Chosen on every dataset's validation: `{chosen}`** (mean validation "
            f"%: {', '.join(f'{m} {v:.2f}' for m, v in accuracy.items())}; mean compacted "
            f"MACs: {macs}).", ""]


def page(args: argparse.Namespace, rows: list[dict]) -> str:
    first = next(iter(rows))["runs"][0]["run"]
    results = load_results(Path(first).parents[3])
    options = f" with {args.bench_options}" if args.bench_options else ""
    size_option, size_values = sizes(args)
    lines = ["# Pruning defaults chosen across datasets", "",
             "Generated by `python " + shlex.join(["benchmarks/pruning_defaults.py",
                                                   *sys.argv[1:]]) + "`; do not edit by hand.",
             "", f"Each dataset's first protocol, {args.seeds} seed(s), the default ST-GCN "
             f"(joint, bone and motion streams){options}, {args.epochs} epochs, no refit; "
             f"methods {args.methods} at {size_option[2:]} {size_values}, accuracies "
             "averaged over them and the seeds. The dense models of the same settings are on "
             "[defaults.md](defaults.md).", "", machine_line(results), "",
             *[line for method in args.methods.split(",")
               for line in method_choice(method, [r for r in rows if r["method"] == method])],
             *(method_default(rows) if len(args.methods.split(",")) > 1 else []),
             "## Every run", "", "Compacted sizes against the dense model's (the pruned run's "
             "own architecture before compaction).", "",
             "| dataset | candidate | rate | validation % | test % | compacted weights | "
             "compacted MACs |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        for run in sorted(row["runs"], key=lambda r: r["rate"]):
            lines.append(f"| {row['dataset']} | {row['recipe']} | {run['rate']:g} | "
                         f"{100 * run['validation_accuracy']:.2f} | "
                         f"{100 * run['test_accuracy']:.2f} | "
                         f"{run['compacted_parameters']:,} "
                         f"({run['compacted_parameters'] / run['parameters']:.2f}x) | "
                         f"{run['compacted_macs']:,} "
                         f"({run['compacted_macs'] / dense_macs(run):.3f}x) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/pruning_defaults"))
    parser.add_argument("--datasets", default=DATASETS,
                        help="Comma-separated DATASET=PROTOCOL pairs.")
    parser.add_argument("--methods", default="tcp_block")
    parser.add_argument("--rates", default="0.9")
    parser.add_argument("--budgets", default=None,
                        help="Nonzero weight counts to prune to, instead of --rates.")
    parser.add_argument("--candidates", default=CANDIDATES,
                        help="Candidate settings NAME=OPTIONS separated by semicolons, OPTIONS "
                             "those of `gcnprune bench accuracy` (may be empty).")
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--bench-options", default="",
                        help="More options of every `gcnprune bench accuracy`, e.g. "
                             "\"--model attention_gcn\".")
    parser.add_argument("--page", type=Path, default=None,
                        help="Also write the page here (e.g. docs/pruning_defaults.md).")
    parser.add_argument("--page-only", action="store_true",
                        help="Write the page from the finished benchmarks without training.")
    args = parser.parse_args()
    if not args.page_only:
        run_benchmarks(args)
    rows = summary_rows(args)
    if not rows:
        raise SystemExit(f"Error: no finished benchmark in {args.out}.")
    text = page(args, rows)
    print(text)
    if args.page:
        args.page.write_text(text)


if __name__ == "__main__":
    main()
