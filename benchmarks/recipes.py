"""Dense training recipes side by side: their summary over protocols and seeds, the recipe
chosen on validation, and the tables of `benchmarks/dense_quality.py`'s results (`results.json`
with `"benchmark": "recipes"`), which `results_page.py` puts on the results page next to
the published numbers of each dataset's protocol."""

from __future__ import annotations

import numpy as np

# What published models reach on each dataset's protocol (top-1 %, test), to read ours against.
PUBLISHED = {
    "sbu": "graph and attention models reach about 98-99% on the 5 folds",
    "jhmdb": "DD-Net (Keras, ground-truth joints) reaches 77.2-78.0% on the 3 splits with "
             "0.5-1.8M weights, 74.7% with 0.15M",
    "msr": "recent graph models reach the mid-90s cross-subject",
}


def recipes_line(results: dict) -> str:
    """One paragraph saying how the recipes' rows were trained and read.

    Example:
        >>> print(recipes_line({"settings": {"model": "stgcn", "frames": 32, "seeds": 3,
        ...                                  "validation": 0.1}}))  # doctest: +ELLIPSIS
        Model `stgcn`, 32 frames, 3 seed(s), every protocol of each dataset; validation is ...
    """
    s = results["settings"]
    protocols = "the first protocol" if s.get("first_protocol") else "every protocol"
    test = "the final model, refit on the whole training split," if s.get("refit") else \
        "the model trained without the validation part"
    return (f"Model `{s['model']}`, {s['frames']} frames, {s['seeds']} seed(s), {protocols} "
            f"of each dataset; validation is carved from each training split "
            f"({s['validation']:.0%}, whole subjects or groups where the data have them). Mean "
            "± standard deviation over protocols and seeds; in brackets the lead over `default` "
            "(the package's defaults) in the same run. Only the validation columns choose; "
            f"test ({test}) is reported.")


def summarise_recipes(records: list[dict]) -> list[dict]:
    """One row per (dataset, recipe): mean and standard deviation (over protocols and seeds,
    in percent) of validation and test top-1, and their leads over the `default` recipe of
    the same dataset.

    Args:
        records: One dict per training (or ensemble) with `dataset`, `recipe`, `validation`,
            `test` (fractions), `weights`, `macs`, `epochs` and `train_time_s`.

    Returns:
        The rows, datasets and recipes in the order they first appear.

    Example:
        >>> def run(recipe, validation, test):
        ...     return {"dataset": "msr", "recipe": recipe, "validation": validation,
        ...             "test": test, "weights": 10, "macs": 20, "epochs": 80,
        ...             "train_time_s": 1.0}
        >>> rows = summarise_recipes([run("default", 0.5, 0.6), run("bone_only", 0.7, 0.7)])
        >>> rows[1]["recipe"], rows[1]["validation_lead"], round(rows[1]["test_lead"], 6)
        ('bone_only', 20.0, 10.0)
    """
    rows = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        of_dataset = [r for r in records if r["dataset"] == dataset]
        default = [r for r in of_dataset if r["recipe"] == "default"]
        for recipe in dict.fromkeys(r["recipe"] for r in of_dataset):
            runs = [r for r in of_dataset if r["recipe"] == recipe]
            row = {"dataset": dataset, "recipe": recipe, "runs": len(runs),
                   "weights": runs[0]["weights"], "macs": runs[0]["macs"],
                   "epochs": runs[0]["epochs"],
                   "train_time_s": float(np.mean([r["train_time_s"] for r in runs]))}
            for part in ("validation", "test"):
                values = 100 * np.array([r[part] for r in runs])
                row[part] = float(values.mean())
                row[f"{part}_std"] = float(values.std())
                if default:
                    row[f"{part}_lead"] = row[part] - 100 * float(np.mean([r[part]
                                                                          for r in default]))
            rows.append(row)
    return rows


def chosen_recipe(rows: list[dict]) -> tuple[str, dict[str, float]]:
    """The recipe with the best validation accuracy averaged over the datasets (only recipes
    measured on every dataset compete), and that average of each.

    Example:
        >>> chosen_recipe([{"dataset": "a", "recipe": "x", "validation": 70.0},
        ...                {"dataset": "a", "recipe": "y", "validation": 80.0},
        ...                {"dataset": "b", "recipe": "x", "validation": 60.0}])
        ('x', {'x': 65.0})
    """
    datasets = {r["dataset"] for r in rows}
    averages = {}
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        values = [r["validation"] for r in rows if r["recipe"] == recipe]
        if len(values) == len(datasets):
            averages[recipe] = float(np.mean(values))
    return max(averages, key=averages.get), averages


def recipe_tables(rows: list[dict]) -> str:
    """Markdown: the recipe chosen on validation, then per dataset each recipe's weights, MACs,
    epochs, validation and test top-1 (lead over `default` in brackets), training time and,
    where measured, LiteRT CPU latency and its ratio to `default`'s; the best validation of
    the dataset in bold, and the published numbers of its protocol (`PUBLISHED`) under it.

    Args:
        rows: Rows of `summarise_recipes`, with `latency_ms` and `latency_ratio` when timed.

    Returns:
        The tables.
    """
    chosen, averages = chosen_recipe(rows)
    lines = [f"**Chosen on validation: `{chosen}`** (validation averaged over the datasets: "
             + ", ".join(f"{k} {v:.2f}" for k, v in sorted(averages.items(),
                                                           key=lambda kv: -kv[1])) + ").", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        of_dataset = [r for r in rows if r["dataset"] == dataset]
        best = max(of_dataset, key=lambda r: r["validation"])
        timed = all("latency_ms" in r for r in rows)
        lines += [f"### {dataset}", "",
                  "| recipe | weights | MACs | epochs | validation top-1 % | test top-1 % | "
                  "one training (s) |" + (" LiteRT CPU ms | / default |" if timed else ""),
                  "|---|---|---|---|---|---|---|" + ("---|---|" if timed else "")]
        for r in of_dataset:
            cells = []
            for part in ("validation", "test"):
                lead = r.get(f"{part}_lead")
                text = f"{r[part]:.2f} ± {r[f'{part}_std']:.2f}"
                cells.append(text if r["recipe"] == "default" or lead is None
                             else f"{text} ({lead:+.2f})")
            name = f"**{r['recipe']}**" if r is best else r["recipe"]
            lines.append(f"| {name} | {r['weights']:,} | {r['macs']:,} | {r['epochs']} | "
                         f"{cells[0]} | {cells[1]} | {r['train_time_s']:.0f} |"
                         + (f" {r['latency_ms']:.3f} | {r['latency_ratio']:.2f}x |" if timed
                            else ""))
        lines.append("")
        lines.append(f"Best on validation: `{best['recipe']}`, {best['test']:.2f} ± "
                     f"{best['test_std']:.2f} on test ({best['runs']} runs, "
                     f"{best['weights']:,} weights)."
                     + (f" Published: {PUBLISHED[dataset]}." if dataset in PUBLISHED else ""))
        lines.append("")
    return "\n".join(lines)
