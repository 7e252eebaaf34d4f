"""LiteRT CPU latency and file size of pruned models, compacted or not, as ratios to dense.

For each model, the dense model and pruned copies at each rate and method, as they are and
compacted (`keras_gcnprune.export.compact`), are exported to verified float32 TFLite files at
batch 1, then timed in LiteRT on the CPU (one thread, interleaved rounds, median) in the same
run. Pruned copies get masks selected on the initial weights (`tcp`: unstructured TCP,
`tcp_block`: TCP inside channel blocks), or come from the trained runs of an accuracy benchmark
(`runs`: its folder; the first protocol and seed 0 of each method). Unstructured pruning leaves
every tensor dense in the file; only compaction narrows layers, and it narrows them far more
when the kept weights were confined to channel blocks.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import keras

from keras_gcnprune import models
from keras_gcnprune.bench.results import load_results
from keras_gcnprune.export import compact, export_tflite, litert_latency_ms
from keras_gcnprune.pruning import assign_masks, topologically_consistent_masks
from keras_gcnprune.pruning.channels import BLOCK_DENSITY
from keras_gcnprune.reports import model_costs

UNTRAINED_RATES = (0.9, 0.95, 0.98, 0.99)
SELECTIONS = {"tcp": None, "tcp_block": BLOCK_DENSITY}  # method -> block density


@dataclass
class ExportBench:
    """What `run_export` measures.

    Args:
        models: Model names (ignored with `runs`: the benchmark's model is used).
        rates: Pruning rates (None: 0.9, 0.95, 0.98, 0.99, or with `runs` the benchmark's).
        layout: Skeleton layout of untrained models.
        frames: Frames per sequence of untrained models.
        classes: Classes of untrained models.
        rounds: Interleaved timing rounds (the median is kept).
        invocations: Model invocations per timing.
        runs: Folder of a `gcnprune bench accuracy` output whose trained models to export.
        methods: Pruning methods (None: `tcp` and `tcp_block`, or with `runs` those of the
            two that the benchmark trained, or else its first pruning method).
    """

    models: tuple[str, ...] = ("attention_gcn", "stgcn")
    rates: tuple[float, ...] | None = None
    layout: str = "sbu_pair"
    frames: int = 32
    classes: int = 8
    rounds: int = 5
    invocations: int = 50
    runs: str | None = None
    methods: tuple[str, ...] | None = None


def _trained_run(runs: Path, name: str) -> Path:
    candidates = sorted((runs / "runs" / name).glob("*/seed0/model.keras"))
    if not candidates:
        raise FileNotFoundError(
            f"No trained run {runs / 'runs' / name}/<protocol>/seed0/model.keras; run "
            f"`gcnprune bench accuracy --out {runs}` with that method and rate first, or "
            "leave out --runs to prune untrained models.")
    return candidates[0]


def _untrained(method: str, rate: float, dense: keras.Model) -> keras.Model:
    if method not in SELECTIONS:
        raise ValueError(f"Untrained models are pruned with {sorted(SELECTIONS)}, not "
                         f"{method!r}; pass --runs to export trained models of other methods.")
    pruned = keras.models.clone_model(dense)
    pruned.set_weights(dense.get_weights())
    assign_masks(pruned, topologically_consistent_masks(pruned, rate,
                                                        block_density=SELECTIONS[method]))
    return pruned


def _models_at_rates(bench: ExportBench, name: str) -> dict[tuple[str, float], keras.Model]:
    """The dense model and every (method, rate)'s pruned model."""
    if bench.runs:
        runs = Path(bench.runs)
        return {("dense", 0.0): keras.models.load_model(_trained_run(runs, "dense")),
                **{(method, rate): keras.models.load_model(
                    _trained_run(runs, f"{method}_{rate:g}"))
                   for method in bench.methods for rate in bench.rates}}
    keras.utils.set_random_seed(0)
    dense = models.build(name, bench.layout, num_classes=bench.classes, frames=bench.frames)
    return {("dense", 0.0): dense,
            **{(method, rate): _untrained(method, rate, dense)
               for method in bench.methods for rate in bench.rates}}


def measure_exports(pruned: dict[tuple[str, float], keras.Model], name: str, folder: Path,
                    rounds: int = 5, invocations: int = 50) -> list[dict]:
    """Exports and times a dense model and pruned models, each as it is and compacted.

    Every file is a verified float32 TFLite file at batch 1; all are timed in the same
    interleaved rounds (median), so the ratios to dense are taken under the same load.

    Args:
        pruned: Models by `(method, rate)`; the dense one under `("dense", 0.0)`.
        name: Model name, for the rows and the file names.
        folder: Where the TFLite files are written.
        rounds: Interleaved timing rounds.
        invocations: Model invocations per timing.

    Returns:
        One row per model and variant (`dense`, `pruned`, `compacted`): parameters (all and
        kept, as `model_costs` counts them), file bytes, LiteRT latency, their ratios to dense,
        GPU-delegate findings and the largest difference from Keras.
    """
    files = {}
    for (method, rate), model in pruned.items():
        variants = {"dense": model} if method == "dense" else {"pruned": model,
                                                               "compacted": compact(model)}
        for variant, exported in variants.items():
            path = folder / f"{name}_{method}_{rate:g}_{variant}.tflite"
            report = export_tflite(exported, path)
            costs = model_costs(exported)
            files[(method, rate, variant)] = (path, {
                "parameters": costs["parameters"], "kept_parameters": costs["kept_parameters"],
                "bytes": report.size_bytes, "gpu_findings": len(report.gpu_findings),
                "max_abs_diff": report.max_abs_diff})
    times = {key: [] for key in files}
    for _ in range(rounds):
        for key, (path, _) in files.items():
            times[key].append(litert_latency_ms(path, runs=invocations))
    dense_size = files[("dense", 0.0, "dense")][1]["bytes"]
    dense_ms = statistics.median(times[("dense", 0.0, "dense")])
    rows = []
    for (method, rate, variant), (_, measured) in files.items():
        latency = statistics.median(times[(method, rate, variant)])
        rows.append({"model": name, "method": method, "rate": rate, "variant": variant,
                     **measured, "size_ratio": round(measured["bytes"] / dense_size, 3),
                     "latency_ms": round(latency, 4),
                     "latency_ratio": round(latency / dense_ms, 3)})
    return rows


def measure_model(bench: ExportBench, name: str, folder: Path) -> list[dict]:
    """Exports and times the dense model and every method and rate, pruned and compacted."""
    return measure_exports(_models_at_rates(bench, name), name, folder, bench.rounds,
                           bench.invocations)


def _trained_methods(settings: dict) -> tuple[str, ...]:
    trained = [m for m in settings["methods"] if m != "dense"]
    return tuple(m for m in SELECTIONS if m in trained) or tuple(trained[:1])


def run_export(bench: ExportBench) -> dict:
    """Measures every model (or the benchmark's trained one).

    Returns:
        `{"rates": [the rates measured], "rows": [one per model, method, rate and variant]}`.

    Example:
        >>> run_export(ExportBench(models=("attention_gcn",), rates=(0.9,)))  # doctest: +SKIP
    """
    if bench.runs:
        settings = load_results(bench.runs)["settings"]
        names = (settings["model"],)
        bench = replace(bench, rates=bench.rates or tuple(settings["rates"]),
                        methods=bench.methods or _trained_methods(settings))
    else:
        names = bench.models
        bench = replace(bench, rates=bench.rates or UNTRAINED_RATES,
                        methods=bench.methods or tuple(SELECTIONS))
    with tempfile.TemporaryDirectory() as folder:
        rows = [row for name in names for row in measure_model(bench, name, Path(folder))]
    return {"rates": list(bench.rates), "rows": rows}


def export_table(results: dict) -> str:
    """Markdown: file size and LiteRT latency of every variant, with ratios to dense."""
    lines = ["| model | method | rate | variant | file KiB | file / dense | latency ms "
             "| latency / dense | GPU findings |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['model']} | {r['method']} | {r['rate']:.1%} | {r['variant']} | "
                     f"{r['bytes'] / 1024:.0f} | {r['size_ratio']:.2f}x | {r['latency_ms']:.3f} "
                     f"| {r['latency_ratio']:.2f}x | {r['gpu_findings']} |")
    return "\n".join(lines) + "\n"
