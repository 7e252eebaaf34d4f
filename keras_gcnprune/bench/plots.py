"""PNG plots of an accuracy benchmark: accuracy against rate and against nonzero weights, and
the disconnected fraction against rate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_gcnprune.outputs import OutputFolder

ACCURACY_PLOT = "accuracy_vs_rate.png"
DISCONNECTED_PLOT = "disconnected_vs_rate.png"
WEIGHTS_PLOT = "accuracy_vs_weights.png"
COMPACTED_PLOT = "accuracy_vs_compacted_weights.png"
# x axis of each plot against size: what it counts
SIZE_AXES = {
    "nonzero_parameters": "nonzero weights (biases and normalization included, log scale)",
    "compacted_parameters": "weights once compacted (the narrowed model's every weight, "
                            "log scale)",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rate_axis(axis, rates: list[float]) -> None:
    """Kept fraction on a log scale, reversed, labelled with the pruning rate: the high rates,
    where methods differ, get as much room as the low ones."""
    ticks = [1.0 - r for r in rates]
    axis.set_xlim(max(ticks) * 1.4, min(ticks) / 1.4)
    axis.set_xscale("log")
    axis.set_xticks(ticks)
    axis.set_xticklabels([f"{r:.1%}".replace(".0%", "%") for r in rates], rotation=45)
    axis.minorticks_off()
    axis.set_xlabel("pruning rate (log scale of kept weights)")
    axis.grid(alpha=0.3)


def _by_method(summary: list[dict]) -> dict[str, list[dict]]:
    methods: dict[str, list[dict]] = {}
    for row in summary:
        methods.setdefault(row["method"], []).append(row)
    return {m: sorted(rows, key=lambda r: r["rate"]) for m, rows in methods.items()}


def plot_accuracy(summary: list[dict], out_dir: str | Path, label: str = "",
                  shapes: Sequence[dict] = ()) -> dict[str, Path]:
    """Draws top-1 accuracy (mean and one standard deviation over folds and seeds) and the
    disconnected fraction of kept weights against the pruning rate, one line per method;
    dense is a horizontal band.

    Args:
        summary: Rows of `keras_gcnprune.bench.results.summarise_accuracy`.
        out_dir: Folder of the two PNG files.
        label: What was measured (e.g. the dataset), put before both titles.
        shapes: Rows of `keras_gcnprune.bench.results.small_dense_shapes`: every small dense
            shape trained, drawn as points on the plots against size.

    Returns:
        `{"accuracy_plot": path, "disconnected_plot": path, "weights_plot": path}`, and
        `"compacted_plot"` when some pruned models were measured compacted.
    """
    plt = _pyplot()
    out_dir = Path(out_dir)
    methods = _by_method(summary)
    dense = methods.pop("dense", None)
    rates = sorted({r["rate"] for rows in methods.values() for r in rows})
    paths = {"accuracy_plot": out_dir / ACCURACY_PLOT,
             "disconnected_plot": out_dir / DISCONNECTED_PLOT,
             "weights_plot": out_dir / WEIGHTS_PLOT}
    if not rates:
        rates = [0.5]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    if dense:
        mean, std = dense[0]["top1_mean"], dense[0]["top1_std"]
        axis.axhline(mean, color="black", linestyle="--", label=f"dense ({mean:.1f})")
        axis.axhspan(mean - std, mean + std, color="black", alpha=0.08)
    for method, rows in methods.items():
        kept = [1.0 - r["rate"] for r in rows]
        mean = np.array([r["top1_mean"] for r in rows])
        std = np.array([r["top1_std"] for r in rows])
        axis.plot(kept, mean, marker="o", label=method)
        axis.fill_between(kept, mean - std, mean + std, alpha=0.15)
    _rate_axis(axis, rates)
    axis.set_ylabel("top-1 accuracy (%)")
    prefix = f"{label}: " if label else ""
    axis.set_title(prefix + "accuracy against pruning rate (mean ± std over folds and seeds)")
    axis.legend(fontsize="small")
    figure.tight_layout()
    _save(plt, figure, paths["accuracy_plot"])

    figure, axis = plt.subplots(figsize=(7, 4))
    for method, rows in methods.items():
        axis.plot([1.0 - r["rate"] for r in rows],
                  [100 * r["disconnected_fraction"] for r in rows], marker="o", label=method)
    _rate_axis(axis, rates)
    axis.set_ylabel("kept weights on no input-output path (%)")
    axis.set_title(prefix + "disconnected fraction against pruning rate (mean)")
    if methods:
        axis.legend(fontsize="small")
    figure.tight_layout()
    _save(plt, figure, paths["disconnected_plot"])
    _plot_against_size(plt, methods, dense, paths["weights_plot"], prefix, shapes=shapes)
    compacted = {m: [r for r in rows if r.get("compacted_parameters") is not None]
                 for m, rows in methods.items()}
    compacted = {m: rows for m, rows in compacted.items() if rows}
    if set(compacted) - {"small_dense"}:
        paths["compacted_plot"] = out_dir / COMPACTED_PLOT
        _plot_against_size(plt, compacted, dense, paths["compacted_plot"], prefix,
                           "compacted_parameters", shapes)
    return paths


def _plot_against_size(plt, methods: dict, dense: list[dict] | None, path: Path,
                       prefix: str, size: str = "nonzero_parameters",
                       shapes: Sequence[dict] = ()) -> None:
    """Top-1 against the models' size (log scale, `size` a key of `SIZE_AXES`): the picture
    to choose a model by; every small dense shape (`shapes`) a grey point."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    if dense:
        row = dense[0]
        axis.errorbar([row[size]], [row["top1_mean"]], yerr=[row["top1_std"]],
                      marker="s", color="black", label=f"dense ({row['top1_mean']:.1f})")
    for method, rows in methods.items():
        rows = sorted(rows, key=lambda r: r[size])
        weights = [r[size] for r in rows]
        mean = np.array([r["top1_mean"] for r in rows])
        std = np.array([r["top1_std"] for r in rows])
        style = {"color": "black", "linestyle": ":"} if method == "small_dense" else {}
        axis.plot(weights, mean, marker="o", label=method, **style)
        axis.fill_between(weights, mean - std, mean + std, alpha=0.12, **(
            {"color": "black"} if method == "small_dense" else {}))
    measured = [r for r in shapes if r.get(size) is not None]
    if measured:
        axis.scatter([r[size] for r in measured], [r["top1_mean"] for r in measured],
                     marker="x", color="grey", label="small_dense, every shape")
    axis.set_xscale("log")
    axis.set_xlabel(SIZE_AXES[size])
    axis.set_ylabel("top-1 accuracy (%)")
    axis.set_title(prefix + "accuracy against size (mean ± std over folds and seeds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    _save(plt, figure, path)


def _save(plt, figure, path: Path) -> None:
    """Writes the figure as the package's own file in its folder (`keras_gcnprune.outputs`:
    a file of that name the package did not write is refused), and closes it."""
    try:
        with OutputFolder(path.parent).locked() as out:
            out.write(path.name, lambda staged: figure.savefig(staged, dpi=110), path.suffix)
    finally:
        plt.close(figure)
