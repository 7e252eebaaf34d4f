"""Training recipes side by side, chosen on validation, reported on test.

Every recipe (a set of `TrainConfig` changes against the package's defaults) trains on every
protocol of every dataset for every seed, with the validation split carved from the training
data: dense models by default, or pruned ones with `--prune METHOD:RATE` (the `strength*`
recipes then re-derive TCP's supervision strength). The recipe to recommend is the one with the
best validation accuracy averaged over the datasets; the test columns are reported, never used
to choose. Each row also gives its lead over the `default` recipe, measured in the same run,
and the model's (nonzero) weights and MACs.

    python benchmarks/dense_quality.py --out runs/dense_quality --datasets sbu,jhmdb,msr
    python benchmarks/dense_quality.py --out runs/tcp_strength --prune tcp:0.99 \
        --recipes strength0.03,strength0.3,strength1
    python benchmarks/dense_quality.py --out runs/streams --model stgcn \
        --recipes default,bone_only,motion_only --ensembles default/bone_only/motion_only

`--ensembles` adds rows for models that average the logits of several recipes' runs (one
per stream, say): their weights, MACs, epochs and training time are the members' summed.

Each training is a run directory under OUT/<dataset>/<recipe>/<protocol>/seed<k>; a rerun skips
finished ones and resumes an interrupted one. Prints the results as JSON and as a Markdown
page (`--page` also writes it), and writes OUT/results.json and its tables as OUT/results.md;
`python benchmarks/results_page.py OUT ...` puts them on a results page beside the pruning
benchmarks, with the published numbers of each dataset's protocol.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from recipes import (
    chosen_recipe,
    recipe_tables,
    recipes_line,
    summarise_recipes,
)
from results_page import machine_line

from keras_gcnprune.bench.results import load_results, save_results
from keras_gcnprune.data import Augmentation, Preprocessing, load_dataset, protocol_names
from keras_gcnprune.export import export_run, litert_latency_ms
from keras_gcnprune.training import (
    PruningConfig,
    RunDirectory,
    TrainConfig,
    ensemble_runs,
    train,
)

DEFAULT_AUGMENTATION = Augmentation()
# Each recipe: what it changes in the package's default TrainConfig.
RECIPES = {
    "default": {},
    "bone_motion": {"preprocessing": {"streams": ("joint", "bone", "motion")}},
    "bone_only": {"preprocessing": {"streams": ("bone",)}},
    "motion_only": {"preprocessing": {"streams": ("motion",)}},
    "rotation45": {"augmentation": {"rotation": 45.0}},
    "shear": {"augmentation": {"shear": 0.3}},
    "crop": {"augmentation": {"crop": 0.8}},
    "no_label_smoothing": {"label_smoothing": 0.0},
    # The default's label smoothing, on a recipe that turns it off.
    "label_smoothing": {"label_smoothing": TrainConfig.label_smoothing},
    "warmup": {"warmup_epochs": 5},
    "segments4": {"model_options": {"segments": 4}},
    "wide": {"model_options": {"head_channels": 16, "graph_channels": 64}},
    "dropout5": {"model_options": {"dropout": 0.5}},
    "epochs160": {"epochs": 160},
    "epochs800": {"epochs": 800},
    "widths48": {"model_options": {"widths": (48, 48, 96, 96)}},
    "no_augmentation": {"augmentation": None},
    "weight_decay0.05": {"weight_decay": 0.05},
    "joint": {"preprocessing": {"streams": ("joint",)}},
    "paper_gcn": {"model": "paper_gcn"},
    # The seed papers' baseline with their regime: Adam, learning rate x0.99 when the loss
    # rises, /0.99 when it falls, 2,700 epochs, batches of 200, no augmentation, plain
    # cross-entropy, joint coordinates alone.
    "paper": {"model": "paper_gcn", "schedule": "loss_adaptive", "learning_rate": 1e-3,
              "weight_decay": 0.0, "epochs": 2700, "batch_size": 200, "augmentation": None,
              "label_smoothing": 0.0, "preprocessing": {"streams": ("joint",)}},
    # The package's default augmentation, on a recipe that turns it off.
    "augmented": {"augmentation": {}},
    "attention_gcn": {"model": "attention_gcn"},
    **{f"strength{value:g}": {"pruning": {"supervision_strength": value}}
       for value in (0.03, 0.3, 1.0)},
}


def recipe_config(recipe: dict, base: TrainConfig) -> TrainConfig:
    """`base` with a recipe's changes; nested settings (augmentation, preprocessing, model
    options) change only the keys the recipe names."""
    changes = {}
    for key, value in recipe.items():
        if key == "augmentation":
            changes[key] = None if value is None else replace(base.augmentation, **value)
        elif key == "preprocessing":
            changes[key] = replace(base.preprocessing, **value)
        elif key == "pruning":
            if base.pruning is None:
                raise SystemExit("Recipes that change the pruning need --prune METHOD:RATE.")
            changes[key] = replace(base.pruning, **value)
        elif key == "model_options":
            changes[key] = {**base.model_options, **value}
        else:
            changes[key] = value
    return replace(base, **changes)


def parse_recipes(text: str) -> dict[str, dict]:
    """Recipes by name; `a+b` combines the changes of `a` and `b` (nested keys merged)."""
    recipes = {}
    for name in text.split(","):
        combined: dict = {}
        for part in name.split("+"):
            if part not in RECIPES:
                raise SystemExit(f"Unknown recipe {part!r}; choose from {sorted(RECIPES)}, "
                                 "or combine them with '+'.")
            for key, value in RECIPES[part].items():
                combined[key] = {**(combined.get(key) or {}), **value} \
                    if isinstance(value, dict) else value
        recipes[name] = combined
    return recipes


def run_path(out: str | Path, dataset_name: str, recipe: str, protocol: str, seed: int
             ) -> Path:
    """Where one training (or ensemble: `a/b` is the folder `a_and_b`) of the run is."""
    return Path(out) / dataset_name / recipe.replace("/", "_and_") / protocol / f"seed{seed}"


def record(dataset_name: str, recipe: str, protocol: str, seed: int, metrics: dict) -> dict:
    """One row of results.json from a run's metrics."""
    return {"dataset": dataset_name, "recipe": recipe, "protocol": protocol, "seed": seed,
            "validation": metrics["validation_accuracy"], "test": metrics["test_accuracy"],
            "weights": metrics["nonzero_parameters"], "macs": metrics["macs"],
            "epochs": metrics["epochs"], "train_time_s": metrics["train_time_s"]}


def protocols_of(dataset_name: str, args) -> tuple[str, ...]:
    """The protocols a dataset trains on: all of them, or its first with `--first-protocol`."""
    names = protocol_names(dataset_name)
    return names[:1] if args.first_protocol else names


def base_config(dataset_name: str, protocol: str, seed: int, args) -> TrainConfig:
    """The `default` recipe's training: the package's defaults (`TrainConfig`) but for what
    the command line sets."""
    defaults = TrainConfig()
    return replace(defaults, dataset=dataset_name, protocol=protocol, model=args.model,
                   epochs=args.epochs, seed=seed, on_error="skip",
                   preprocessing=replace(defaults.preprocessing, frames=args.frames),
                   pruning=args.pruning, refit=args.refit)


def run_recipe(dataset_name: str, name: str, recipe: dict, args, dataset) -> list[dict]:
    records = []
    for protocol in protocols_of(dataset.name, args):
        for seed in range(args.seeds):
            config = recipe_config(recipe, base_config(dataset_name, protocol, seed, args))
            run_dir = run_path(args.out, dataset_name, name, protocol, seed)
            if RunDirectory(run_dir).finished():
                metrics = RunDirectory(run_dir).read_metrics()
            else:
                print(f"training {dataset_name} {name} {protocol} seed {seed}", file=sys.stderr,
                      flush=True)
                metrics = train(config, run_dir, dataset=dataset, verbose=0)
            records.append(record(dataset_name, name, protocol, seed, metrics))
    return records


def run_ensemble(dataset_name: str, members: list[str], args, dataset) -> list[dict]:
    """The ensemble of the recipes `members` (their runs' logits averaged) on every protocol
    and seed, as records like a recipe's; its epochs and time are its members' summed."""
    records = []
    name = "/".join(members)
    for protocol in protocols_of(dataset.name, args):
        for seed in range(args.seeds):
            runs = [run_path(args.out, dataset_name, m, protocol, seed) for m in members]
            run_dir = run_path(args.out, dataset_name, name, protocol, seed)
            finished = RunDirectory(run_dir)
            metrics = finished.read_metrics() if finished.finished() else \
                ensemble_runs(runs, run_dir, dataset=dataset)
            records.append(record(dataset_name, name, protocol, seed, metrics))
    return records


def parse_ensembles(text: str | None, recipes: dict) -> list[list[str]]:
    """`a/b/c,d/e` -> [[a, b, c], [d, e]]: ensembles of recipes that also run."""
    ensembles = [name.split("/") for name in (text.split(",") if text else [])]
    for members in ensembles:
        missing = [m for m in members if m not in recipes]
        if len(members) < 2 or missing:
            raise SystemExit(f"Ensemble {'/'.join(members)!r} needs two or more recipes of "
                             f"--recipes; {missing or 'only one'} is not one.")
    return ensembles


def settings(args) -> dict:
    """What the rows were trained with, as `results.json` keeps it."""
    return {"model": args.model, "datasets": args.datasets.split(","), "recipes": args.recipes,
            "ensembles": args.ensembles, "seeds": args.seeds, "epochs": args.epochs,
            "frames": args.frames, "prune": args.prune,
            "first_protocol": args.first_protocol, "refit": args.refit,
            "validation": TrainConfig.validation,
            "note": args.note}


def page(results: dict) -> str:
    """The Markdown page of a `results.json` of this benchmark."""
    s = results["settings"]
    trained = f"pruned with {s['prune']} (nonzero weights)" if s["prune"] else "dense"
    datasets = {row["dataset"] for row in results["summary"]}
    return "\n".join([
        f"# Training recipes, {trained}", "",
        "Generated by `benchmarks/dense_quality.py`; do not edit by hand. Command: "
        f"`{results['command']}`.", "",
        recipes_line(results), "", machine_line(results), "",
        *([s["note"], ""] if s.get("note") else []),
        *(leave_one_dataset_out(results["summary"]) if len(datasets) > 2 else []),
        recipe_tables(results["summary"])])


def leave_one_dataset_out(rows: list[dict]) -> list[str]:
    """Markdown lines: for each dataset, the recipe chosen on the validation accuracy averaged
    over the *other* datasets, and what it reaches on this one, beside the recipe this
    dataset's own validation would choose: a default is never scored on the data it was
    chosen on.

    Example:
        >>> rows = [{"dataset": d, "recipe": r, "validation": v, "test": v, "test_std": 0.0}
        ...         for d, r, v in [("a", "x", 90), ("a", "y", 80), ("b", "x", 70),
        ...                         ("b", "y", 75), ("c", "x", 60), ("c", "y", 50)]]
        >>> print(leave_one_dataset_out(rows)[6])
        | a | x (65.00) | 90.00 ± 0.00 | x |
    """
    lines = ["## Chosen without the dataset it is scored on", "",
             "Each dataset in turn is held out: the recipe with the best validation accuracy "
             "averaged over the other datasets is the one a user of a new dataset would get, "
             "and its test accuracy on the held-out dataset is what it carries there.", "",
             "| held out | chosen on the others (their mean validation %) | its test top-1 % "
             "here | best on this dataset's own validation |", "|---|---|---|---|"]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        others = [r for r in rows if r["dataset"] != dataset]
        chosen, averages = chosen_recipe(others)
        here = {r["recipe"]: r for r in rows if r["dataset"] == dataset}
        own = max(here.values(), key=lambda r: r["validation"])["recipe"]
        row = here[chosen]
        lines.append(f"| {dataset} | {chosen} ({averages[chosen]:.2f}) | {row['test']:.2f} ± "
                     f"{row['test_std']:.2f} | {own} |")
    return [*lines, ""]


def add_latencies(rows: list[dict], records: list[dict], out: Path, rounds: int = 5) -> None:
    """Each row's LiteRT CPU latency (ms, batch 1, one thread, the median of `rounds`
    interleaved timings) of its first protocol's seed-0 model exported to a verified float
    TFLite file, and its ratio to `default`'s on the same dataset."""
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for row in rows:
            protocol = next(r["protocol"] for r in records
                            if (r["dataset"], r["recipe"]) == (row["dataset"], row["recipe"]))
            run = run_path(out, row["dataset"], row["recipe"], protocol, 0)
            files[row["dataset"], row["recipe"]] = path = \
                Path(folder) / f"{row['dataset']}_{len(files)}.tflite"
            export_run(run, tflite=path, gpu_engine="off")
        times = {key: [] for key in files}
        for _ in range(rounds):
            for key, path in files.items():
                times[key].append(litert_latency_ms(path))
    for row in rows:
        row["latency_ms"] = float(np.median(times[row["dataset"], row["recipe"]]))
        row["latency_ratio"] = row["latency_ms"] / float(np.median(times[row["dataset"],
                                                                         "default"]))


def write_results(out: Path, command: str, args, records: list[dict],
                  rows: list[dict] | None = None) -> dict:
    """Writes OUT/results.json and OUT/results.md; returns what results.json holds."""
    rows = rows or summarise_recipes(records)
    save_results(out, "recipes", command, settings(args), recipe_tables(rows),
                 records=records, summary=rows)
    return load_results(out)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="sbu,jhmdb,msr")
    parser.add_argument("--recipes", default=",".join(r for r in RECIPES
                                                      if "pruning" not in RECIPES[r]),
                        help="Comma-separated recipe names; 'a+b' combines two (default: "
                             "every recipe that does not change the pruning).")
    parser.add_argument("--ensembles", default=None, metavar="A/B[/C],...",
                        help="Also ensemble the runs of these recipes (averaged logits, one "
                             "model; e.g. default/bone_only/motion_only), each a row.")
    parser.add_argument("--model", default=TrainConfig.model)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--frames", type=int, default=Preprocessing.frames)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="Report the selection runs' test accuracy instead of training "
                             "each final model again on the whole training split.")
    parser.add_argument("--first-protocol", action="store_true",
                        help="Train on each dataset's first protocol (fold, split) only.")
    parser.add_argument("--prune", default=None, metavar="METHOD:RATE",
                        help="Prune every recipe's model, e.g. tcp:0.99 (default: dense).")
    parser.add_argument("--out", default="runs/dense_quality")
    parser.add_argument("--latency", action="store_true",
                        help="Also time each recipe's first model in LiteRT on the CPU.")
    parser.add_argument("--note", default=None,
                        help="A paragraph for the page, after the machine line (for example "
                             "what `default` was when the runs trained).")
    parser.add_argument("--page", default=None, help="Also write the page here (e.g. "
                        "docs/dense_quality.md).")
    args = parser.parse_args(argv)
    args.pruning = None
    if args.prune:
        method, _, rate = args.prune.partition(":")
        args.pruning = PruningConfig(method=method, rate=float(rate))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    recipes = parse_recipes(args.recipes)
    if "default" not in recipes:
        recipes = {"default": {}, **recipes}
    ensembles = parse_ensembles(args.ensembles, recipes)
    command = shlex.join(["python", "benchmarks/dense_quality.py", *(argv or sys.argv[1:])])
    records = []
    out = Path(args.out)
    for dataset_name in args.datasets.split(","):
        dataset = load_dataset(dataset_name, on_error="skip")
        for name, recipe in recipes.items():
            records += run_recipe(dataset_name, name, recipe, args, dataset)
            results = write_results(out, command, args, records)
        for members in ensembles:
            records += run_ensemble(dataset_name, members, args, dataset)
            results = write_results(out, command, args, records)
    if args.latency:
        add_latencies(results["summary"], records, out)
        results = write_results(out, command, args, records, results["summary"])
    text = page(results)
    if args.page:
        Path(args.page).write_text(text)
    print(json.dumps(results["summary"], indent=2))
    print(text)


if __name__ == "__main__":
    main()
