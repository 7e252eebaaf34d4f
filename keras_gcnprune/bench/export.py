"""LiteRT CPU latency, file size and GPU readiness of pruned models, compacted or not.

For each model, the dense model and pruned copies at each rate and method, as they are and
compacted (`keras_gcnprune.pruning.compact`), are exported to verified TFLite files at batch 1
in each asked quantization (int8 calibrated on seeded random inputs), then timed in LiteRT on
the CPU (one thread, interleaved rounds, median) in the same run, with ratios to the dense
file of the same quantization. Each file is also judged by the static GPU checker and, where it
is installed, run on LiteRT's GPU engine with no CPU fallback; the rows say whether the two
agree. Pruned copies get masks selected on the initial weights (`tcp`: unstructured TCP,
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
import numpy as np

from keras_gcnprune import models
from keras_gcnprune.bench.accuracy import UNPRUNED_METHODS, saved_settings
from keras_gcnprune.bench.results import chosen_on_validation, load_results, shape_size
from keras_gcnprune.export import check_gpu, compact, export_tflite, litert_latency_ms
from keras_gcnprune.export.convert import CALIBRATED
from keras_gcnprune.pruning import (
    PRUNING_PRESETS,
    assign_masks,
    topologically_consistent_masks,
)
from keras_gcnprune.reports import model_costs

UNTRAINED_RATES = (0.9, 0.95, 0.98, 0.99)
# method -> block density
SELECTIONS = {name: PRUNING_PRESETS[name].get("block_density") for name in ("tcp", "tcp_block")}


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
            two that the benchmark trained, or else its first pruning method); with `runs`,
            also `small_dense` (the shape chosen on validation), the baseline to time a
            compacted `tcp_block` model against.
        quantizations: TFLite quantizations to export each model in.
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
    quantizations: tuple[str, ...] = ("none",)


def _trained_run(runs: Path, name: str) -> Path:
    candidates = sorted((runs / "runs" / name).glob("*/seed0/model.keras"))
    if not candidates:
        raise FileNotFoundError(
            f"No trained run {runs / 'runs' / name}/<protocol>/seed0/model.keras; run "
            f"the accuracy benchmark into {runs} with that method and rate first, or leave "
            "out runs (--runs) to prune untrained models.")
    return candidates[0]


def _small_dense_run(runs: Path, rate: float, protocol: str) -> Path:
    """The small dense run the accuracy benchmark compares at `rate`: of its shapes, the one
    chosen on validation (`chosen_on_validation`), seed 0."""
    results = load_results(runs)
    size = shape_size(saved_settings(results)["block_budget"])
    chosen = [r for r in chosen_on_validation(results["records"], size)
              if r["method"] == "small_dense" and r["rate"] == rate
              and r["protocol"] == protocol and r["seed"] == 0]
    if not chosen:
        raise FileNotFoundError(
            f"{runs} has no small_dense run at rate {rate:g} on {protocol}, seed 0; run the "
            "accuracy benchmark into it with small_dense at that rate first.")
    # by the run's own folders: the benchmark's folder may have moved since
    return runs.joinpath("runs", *Path(chosen[0]["run"]).parts[-3:], "model.keras")


def _untrained(method: str, rate: float, dense: keras.Model) -> keras.Model:
    if method not in SELECTIONS:
        raise ValueError(f"Untrained models are pruned with {sorted(SELECTIONS)}, not "
                         f"{method!r}; give runs= (--runs) to export trained models of other "
                         "methods.")
    pruned = keras.models.clone_model(dense)
    pruned.set_weights(dense.get_weights())
    assign_masks(pruned, topologically_consistent_masks(pruned, rate,
                                                        block_density=SELECTIONS[method]))
    return pruned


def _models_at_rates(bench: ExportBench, name: str) -> dict[tuple[str, float], keras.Model]:
    """The dense model and every (method, rate)'s pruned model."""
    if bench.runs:
        runs = Path(bench.runs)
        dense = _trained_run(runs, "dense")
        protocol = dense.parts[-3]

        def run_of(method: str, rate: float) -> Path:
            if method == "small_dense":
                return _small_dense_run(runs, rate, protocol)
            return _trained_run(runs, f"{method}_{rate:g}")
        return {("dense", 0.0): keras.models.load_model(dense),
                **{(method, rate): keras.models.load_model(run_of(method, rate))
                   for method in bench.methods for rate in bench.rates}}
    keras.utils.set_random_seed(0)
    dense = models.build(name, bench.layout, num_classes=bench.classes, frames=bench.frames)
    return {("dense", 0.0): dense,
            **{(method, rate): _untrained(method, rate, dense)
               for method in bench.methods for rate in bench.rates}}


def _calibration(model: keras.Model, samples: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((samples, *model.input_shape[1:])).astype("float32")


def _gpu_verdicts(report) -> dict:
    """Both GPU checkers' verdicts on an exported file, and whether they agree."""
    kinds = sorted({finding.kind for finding in check_gpu(report.path)})
    engine = report.gpu_engine.status if report.gpu_engine else None
    static_runs = not {"refused", "wrong"} & set(kinds)
    return {"gpu_findings": len(report.gpu_findings), "gpu_finding_kinds": kinds,
            "gpu_engine": engine or "not run",
            "gpu_engine_diff": report.gpu_engine.max_abs_diff if engine else None,
            "checkers_agree": None if engine is None else static_runs == (engine == "runs")}


def measure_exports(pruned: dict[tuple[str, float], keras.Model], name: str, folder: Path,
                    rounds: int = 5, invocations: int = 50,
                    quantizations: tuple[str, ...] = ("none",)) -> list[dict]:
    """Exports and times a dense model and pruned models, each as it is and compacted.

    Every file is a verified TFLite file at batch 1; all are timed in the same interleaved
    rounds (median), so the ratios to dense are taken under the same load.

    Args:
        pruned: Models by `(method, rate)`; the dense one under `("dense", 0.0)`.
        name: Model name, for the rows and the file names.
        folder: Where the TFLite files are written.
        rounds: Interleaved timing rounds.
        invocations: Model invocations per timing.
        quantizations: TFLite quantizations (int8 and int16x8 are calibrated on seeded random
            inputs).

    Returns:
        One row per model, variant (`dense`, `pruned`, `compacted`) and quantization:
        parameters (all and kept, as `model_costs` counts them), file bytes, LiteRT latency,
        their ratios to the dense file of that quantization, the largest difference from
        Keras, and the verdicts of the static GPU checker and of LiteRT's GPU engine.
    """
    files = {}
    for (method, rate), model in pruned.items():
        # unpruned models are exported as they are: nothing to compact
        variants = {"dense": model} if method in UNPRUNED_METHODS else {
            "pruned": model, "compacted": compact(model)}
        for variant, exported in variants.items():
            costs = model_costs(exported)
            for quantization in quantizations:
                path = folder / f"{name}_{method}_{rate:g}_{variant}_{quantization}.tflite"
                report = export_tflite(exported, path, quantization=quantization, representative=(
                    _calibration(exported) if quantization in CALIBRATED else None))
                files[(method, rate, variant, quantization)] = (path, {
                    "parameters": costs["parameters"],
                    "kept_parameters": costs["kept_parameters"], "bytes": report.size_bytes,
                    "max_abs_diff": report.max_abs_diff, **_gpu_verdicts(report)})
    times = {key: [] for key in files}
    for _ in range(rounds):
        for key, (path, _) in files.items():
            times[key].append(litert_latency_ms(path, runs=invocations))
    rows = []
    for (method, rate, variant, quantization), (_, measured) in files.items():
        dense = ("dense", 0.0, "dense", quantization)
        latency = statistics.median(times[(method, rate, variant, quantization)])
        rows.append({"model": name, "method": method, "rate": rate, "variant": variant,
                     "quantization": quantization, **measured,
                     "size_ratio": round(measured["bytes"] / files[dense][1]["bytes"], 3),
                     "latency_ms": round(latency, 4),
                     "latency_ratio": round(latency / statistics.median(times[dense]), 3)})
    return rows


def measure_model(bench: ExportBench, name: str, folder: Path) -> list[dict]:
    """Exports and times the dense model and every method and rate, pruned and compacted."""
    return measure_exports(_models_at_rates(bench, name), name, folder, bench.rounds,
                           bench.invocations, bench.quantizations)


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
    """Markdown: file size, LiteRT latency (ratios to dense) and both GPU checkers' verdicts."""
    lines = ["| model | method | rate | variant | quantization | file KiB | file / dense "
             "| latency ms | latency / dense | GPU checker findings | GPU engine, GPU only "
             "| checkers agree |", "|---" * 12 + "|"]
    for r in results["rows"]:
        engine = r.get("gpu_engine", "not run")
        if r.get("gpu_engine_diff") is not None:
            engine += f" (max diff {r['gpu_engine_diff']:.1g})"
        agree = {None: "-", True: "yes", False: "NO"}[r.get("checkers_agree")]
        lines.append(f"| {r['model']} | {r['method']} | {r['rate']:.1%} | {r['variant']} | "
                     f"{r.get('quantization', 'none')} | {r['bytes'] / 1024:.0f} | "
                     f"{r['size_ratio']:.2f}x | {r['latency_ms']:.3f} | "
                     f"{r['latency_ratio']:.2f}x | {r['gpu_findings']} | {engine} | {agree} |")
    return "\n".join(lines) + "\n"
