"""Per-layer pruning rate and connectivity of a masked model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from keras_gcnprune.outputs import file_output
from keras_gcnprune.pruning.compaction import compact
from keras_gcnprune.pruning.masks import masked_layers
from keras_gcnprune.pruning.topology import reachability
from keras_gcnprune.reports.costs import model_costs


@dataclass(frozen=True)
class LayerReport:
    """Sparsity and connectivity of one masked weight.

    Attributes:
        layer: Layer name.
        weight: Weight path.
        role: `"channels"` (a channel kernel) or `"adjacency"` (learned joint-to-joint
            weights); channel counts are the layer's either way.
        shape: Kernel shape.
        weights: Number of entries.
        kept: Entries kept by the mask.
        rate: Realized pruning rate (`1 - kept / weights`).
        disconnected: Kept entries on no input-to-output path (wasted budget).
        input_channels: Input channels of the layer.
        dead_inputs: Input channels that are not both accessible and co-accessible.
        output_channels: Output channels of the layer.
        dead_outputs: Output channels that are not both accessible and co-accessible.
    """

    layer: str
    weight: str
    role: str
    shape: tuple[int, ...]
    weights: int
    kept: int
    rate: float
    disconnected: int
    input_channels: int
    dead_inputs: int
    output_channels: int
    dead_outputs: int


def connectivity_report(model: keras.Model, costs: bool = False) -> dict:
    """Measures every masked weight of `model` (channel kernels and learned adjacencies) with
    its current masks; the total is over all of them, whichever a pruning method pruned.

    Args:
        model: A model built from the package's masked layers.
        costs: Also compare parameters and multiply-accumulates of the dense architecture, the
            pruned model (kept weights) and its compaction (`keras_gcnprune.pruning.compact`).

    Returns:
        `{"layers": [LayerReport as dict, ...], "total": {...}}` where the total holds
        `weights`, `kept`, `rate`, `disconnected` and `disconnected_fraction` (of kept weights);
        with `costs`, also `"costs": {"dense", "pruned", "compacted"}`, each with `parameters`
        and `macs`.

    Example:
        >>> report = connectivity_report(model)  # doctest: +SKIP
        >>> print(format_table(report))  # doctest: +SKIP
    """
    result = reachability(model)
    rows = []
    for layer in masked_layers(model):
        input_id, output_id = result.layer_tensors[layer.name]
        live_in, live_out = result.live_channels(input_id), result.live_channels(output_id)
        for weight in layer.masked_weights():
            mask = weight.mask.numpy()
            kept = int(mask.sum())
            rows.append(LayerReport(
                layer=layer.name,
                weight=weight.kernel.path,
                role=weight.role,
                shape=tuple(mask.shape),
                weights=int(mask.size),
                kept=kept,
                rate=1.0 - kept / mask.size,
                disconnected=int((mask * ~result.used[weight.mask.path]).sum()),
                input_channels=int(live_in.size),
                dead_inputs=int((~live_in).sum()),
                output_channels=int(live_out.size),
                dead_outputs=int((~live_out).sum()),
            ))
    weights = sum(r.weights for r in rows)
    kept = sum(r.kept for r in rows)
    disconnected = sum(r.disconnected for r in rows)
    report = {
        "model": model.name,
        "layers": [asdict(r) for r in rows],
        "total": {
            "weights": weights,
            "kept": kept,
            "rate": 1.0 - kept / weights if weights else 0.0,
            "disconnected": disconnected,
            "disconnected_fraction": disconnected / kept if kept else 0.0,
        },
    }
    if costs:
        report["costs"] = _costs(model)
    return report


def _costs(model: keras.Model) -> dict:
    pruned, compacted = model_costs(model), model_costs(compact(model))
    return {
        "dense": {"parameters": pruned["parameters"], "macs": pruned["macs"]},
        "pruned": {"parameters": pruned["kept_parameters"], "macs": pruned["kept_macs"]},
        "compacted": {"parameters": compacted["parameters"], "macs": compacted["macs"]},
    }


def format_table(report: dict) -> str:
    """Renders a report as a fixed-width text table."""
    header = (f"{'layer':22s} {'shape':18s} {'kept':>8s} {'rate':>7s} {'disconn.':>8s} "
              f"{'dead in':>9s} {'dead out':>9s}")
    lines = [header, "-" * len(header)]
    for r in report["layers"]:
        name = r["layer"] if r.get("role", "channels") == "channels" else f"{r['layer']} (adj.)"
        lines.append(
            f"{name:22s} {str(tuple(r['shape'])):18s} {r['kept']:8d} {r['rate']:7.2%} "
            f"{r['disconnected']:8d} {r['dead_inputs']:4d}/{r['input_channels']:<4d} "
            f"{r['dead_outputs']:4d}/{r['output_channels']:<4d}"
        )
    total = report["total"]
    lines.append("-" * len(header))
    lines.append(
        f"{'total':22s} {total['weights']:>18d} {total['kept']:8d} {total['rate']:7.2%} "
        f"{total['disconnected']:8d}  ({total['disconnected_fraction']:.1%} of kept weights "
        "on no input-to-output path)"
    )
    for name, cost in report.get("costs", {}).items():
        lines.append(f"{name + ' model':22s} {cost['parameters']:>18,d} parameters "
                     f"{cost['macs']:>14,d} MACs per sequence")
    return "\n".join(lines)


def plot_report(report: dict, path: str | Path, reads=()) -> Path:
    """Draws per-layer density and dead channels as a PNG.

    Args:
        report: What `connectivity_report` returns.
        path: The PNG file; an existing one is replaced only if the package wrote it.
        reads: Files the caller read the model from: never written over.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    names = [r["layer"] for r in layers]
    positions = np.arange(len(layers))
    density = [1.0 - r["rate"] for r in layers]
    wasted = [r["disconnected"] / r["weights"] for r in layers]
    dead = [r["dead_outputs"] / r["output_channels"] for r in layers]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, len(layers) * 0.8), 6),
                                         sharex=True)
    top.bar(positions, density, label="kept")
    top.bar(positions, wasted, label="kept but disconnected", color="tab:red")
    top.set_ylabel("fraction of weights")
    top.set_yscale("log")
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    top.set_title(f"{report['model']}: {report['total']['rate']:.2%} pruned, "
                  f"{report['total']['disconnected_fraction']:.1%} of kept weights disconnected")
    bottom.bar(positions, dead, color="tab:gray")
    bottom.set_ylabel("dead output channels")
    bottom.set_ylim(0, 1)
    bottom.set_xticks(positions, names, rotation=45, ha="right")
    figure.tight_layout()
    out, name = file_output(path, reads)
    try:
        with out.locked():
            out.write(name, lambda staged: figure.savefig(staged, dpi=120), Path(name).suffix)
    finally:
        plt.close(figure)
    return Path(path)
