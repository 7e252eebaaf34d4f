"""This project's results pages (`docs/results.md` and the others) generated from benchmark
output folders, never typed by hand:

    python benchmarks/results_page.py OUT [OUT ...] --to docs/results.md

Each folder's `results.json` and plots are copied next to the Markdown file
(`<docs>/results/<name>/`), so the published numbers and the raw results travel together;
the trained models stay in the output folders.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from recipes import recipe_tables, recipes_line

from keras_gcnprune.bench.accuracy import (
    BENCH_METHODS,
    TCP_METHODS,
    UNPRUNED_METHODS,
    AccuracyBench,
    saved_settings,
)
from keras_gcnprune.bench.plots import (
    ACCURACY_PLOT,
    COMPACTED_PLOT,
    DISCONNECTED_PLOT,
    WEIGHTS_PLOT,
)
from keras_gcnprune.bench.results import (
    BUDGET_SIZES,
    RESULTS_FILE,
    accuracy_summary,
    accuracy_tables,
    budget_leads,
    budget_table,
    load_results,
    realized_rates_table,
    shape_size,
    small_dense_shapes,
)
from keras_gcnprune.pruning import MULTI_RATE_METHODS

DATASET_TITLES = {"sbu": "SBU Kinect Interaction", "msr": "MSR Action3D",
                  "jhmdb": "JHMDB", "shrec21": "SHREC'21 hand gestures",
                  "landmarks": "MediaPipe hand landmarks",
                  "synthetic": "Synthetic hand gestures"}


def machine_line(results: dict) -> str:
    """One sentence naming the machine, libraries, commit and date of `results["machine"]`
    (`keras_gcnprune.bench.results.machine()`)."""
    m = results["machine"]
    commit = f" (commit {m['git_commit']})" if m.get("git_commit") else ""  # older files lack it
    return (f"Machine: {m['processor']} ({m['system']}, {m['cpu_cores']} cores, device "
            f"{m['device']}); keras-gcnprune {m['keras_gcnprune']}{commit}, TensorFlow "
            f"{m['tensorflow']}, Keras {m['keras']}, Python {m['python']}; {m['date']}.")


def _export_title(results: dict) -> str:
    runs = results["settings"]["runs"]
    source = f"the trained models of `{runs}`" if runs else "masks selected on initial weights"
    return f"Export: LiteRT latency and file size, {source}"


def _training_line(settings: dict) -> str:
    """How the pruned models were trained, from the benchmark's settings (`saved_settings`)."""
    parts = []
    if settings["from_dense"]:
        parts.append("pruning starts from the dense run of each protocol and seed")
    if settings["distill"]:
        parts.append("every model but dense distils from that dense run")
    if settings["start_ratio"]:
        parts.append(f"every pruning method starts from the model of the family about "
                     f"{settings['start_ratio']:g} times each rate's budget (the weights of the "
                     f"benchmark's model pruned at that rate) and prunes it to that budget"
                     + (", mrmp from that many times the largest budget, every budget trained "
                        "on it" if "mrmp" in settings["methods"] else "")
                     + "; the rates name the budgets, the realized rates are the starting "
                       "models'")
    if set(settings["methods"]) - set(UNPRUNED_METHODS):
        begin, end = settings["ramp"]
        parts.append(f"pruning ramps from {begin:.0%} to {end:.0%} of the training, the "
                     "rest fine-tunes the final masks")
    band_stop = [m for m in MULTI_RATE_METHODS if m in settings["methods"]]
    if band_stop:
        parts.append(f"the {' and '.join(band_stop)} models keep"
                     + (" the best-ranked subnetwork of each budget whose every weight lies on "
                        "an input-to-output path" if settings["consistent_extraction"] else
                        " the largest-ranked weights of each budget"))
    if "mrmp" in settings["methods"] and _mrmp_step(settings):
        parts.append(f"each mrmp training step {_mrmp_step(settings)}")
    if strength := _tcp_strength(settings, settings["methods"]):
        parts.append(f"TCP's supervision strength is {strength}")
    if "tcp_block" in settings["methods"]:
        density = settings["block_density"]
        parts.append(f"`tcp_block` fills {density:g} of its channel blocks"
                     + (" (whole channels)" if density == 1 else "")
                     + BLOCK_BUDGET_WORDS[settings["block_budget"]])
    text = "; ".join(parts)
    return f" {text[0].upper()}{text[1:]}." if parts else ""


# How a section says what tcp_block's rates budget (AccuracyBench.block_budget).
BLOCK_BUDGET_WORDS = {
    "compacted": " and prunes to the rate at which its compacted model has the weights the "
                 "other methods keep nonzero at each rate, not to the rate itself",
    "nonzero": ", at the other methods' rates (so its compacted model's weights are not their "
               "nonzero weights)",
    "macs": " and prunes to the rate at which its compacted model keeps 1 - rate of the dense "
            "model's MACs, and small_dense's widths are matched to those MACs, not to weights",
}


def _ramp_title(settings: dict) -> str:
    """Names a pruning ramp other than the default in a section's title."""
    begin, end = ramp = tuple(settings["ramp"])
    return "" if ramp == AccuracyBench.ramp else f", pruning ramp {begin:.0%} to {end:.0%}"


def _extraction_title(settings: dict) -> str:
    """Names the published (ranked) extraction of srmp and mrmp in a section's title."""
    ranked = set(MULTI_RATE_METHODS) & set(settings["methods"]) \
        and not settings["consistent_extraction"]
    return ", ranked extraction" if ranked else ""


def _tcp_strength(settings: dict, methods: Sequence[str]) -> str:
    """TCP's supervision strength where it differs from the default and one of `methods` is
    TCP's ("" otherwise)."""
    strength = settings["supervision_strength"]
    return f"{strength:g}" if strength != AccuracyBench.supervision_strength \
        and set(TCP_METHODS) & set(methods) else ""


def _strength_title(settings: dict) -> str:
    """Names a TCP supervision strength other than the default in a section's title."""
    strength = _tcp_strength(settings, settings["methods"])
    return f", TCP supervision strength {strength}" if strength else ""


def _self_distillation_title(settings: dict) -> str:
    """Names mrmp's self-distillation, where a benchmark used it, in a section's title."""
    weight = settings["self_distillation"]
    return f", mrmp self-distillation {weight:g}{_teacher_words(settings)}" \
        if "mrmp" in settings["methods"] and weight else ""


def _teacher_words(settings: dict) -> str:
    """" from the next denser rate" where mrmp's sparser rates learn from that one."""
    return " from the next denser rate" if settings["self_distillation_teacher"] == "next" else ""


def _mrmp_step(settings: dict) -> str:
    """How mrmp's steps differ from the default (every rate, weights 1/sqrt(1 - rate), no
    self-distillation), in a few words ("" for the default)."""
    per_step, weights = settings["rates_per_step"], settings["rate_weights"]
    self_distillation = settings["self_distillation"]
    return " and ".join(
        [*([f"evaluates {per_step} of its rates"] if per_step else []),
         *([f"weighs its rates' losses {', '.join(f'{w:g}' for w in weights)}"]
           if weights else []),
         *([f"distils its sparser rates from its densest (weight {self_distillation:g})"
            if settings["self_distillation_teacher"] == "densest" else
            f"distils each sparser rate from the next denser one (weight {self_distillation:g})"]
           if self_distillation else [])])


def _accuracy_section(results: dict, folder: str, copied: set[str]) -> list[str]:
    settings = saved_settings(results)
    name = settings["dataset"].split(":")[0]
    trainings = results["trainings"]
    status = ("" if trainings["finished"] == trainings["planned"] else
              f" **Partial: {trainings['finished']} of {trainings['planned']} trainings "
              "finished; rerun the command to complete it.**")
    lines = [
        f"## {DATASET_TITLES.get(name, name)}: accuracy against pruning rate, "
        f"{settings['model']}{_options_text(settings.get('model_options'))}, "
        f"{', '.join(settings['methods'])}"
        + (f", pruned from {settings['start_ratio']:g} times each budget"
           if settings["start_ratio"] else "") + _ramp_title(settings)
        + _extraction_title(settings) + _self_distillation_title(settings)
        + _strength_title(settings), "",
        f"`{settings['model']}`{_options_text(settings.get('model_options'))}, protocols "
        f"{', '.join(settings['protocols'])}, "
        f"{settings['seeds']} seed(s), {settings['epochs']} epochs, {settings['frames']} frames; "
        f"mean ± standard deviation of top-1 over protocols and seeds, leads over the small "
        f"dense model of the same {'MACs' if settings['block_budget'] == 'macs' else 'weights'}"
        f" (small) and over magnitude pruning (mag.) in "
        f"brackets; MRMP is one training per protocol and seed for all rates; rates count "
        f"every weight but biases and normalization."
        + _training_line(settings)
        + status, "",
        f"Command: `{results['command']}`", "", machine_line(results), "",
        accuracy_tables(accuracy_summary(results["records"],
                                         shape_size(settings["block_budget"])),
                        settings["methods"],
                        settings["rates"],
                        small_dense_shapes(results["records"])),
        realized_rates_table(results.get("mrmp_realized_rates", [])),
        *([f"![accuracy against nonzero weights]({folder}/{WEIGHTS_PLOT})"]
          if WEIGHTS_PLOT in copied else []),  # older results have no such plot
        *([f"![accuracy against compacted weights]({folder}/{COMPACTED_PLOT})"]
          if COMPACTED_PLOT in copied else []),
        f"![accuracy against rate]({folder}/{ACCURACY_PLOT})",
        f"![disconnected fraction against rate]({folder}/{DISCONNECTED_PLOT})", "",
        f"Raw results: [{folder}/{RESULTS_FILE}]({folder}/{RESULTS_FILE}).", "",
    ]
    return lines


# Settings that decide which models a benchmark can train; benchmarks of one dataset that share
# them and differ in how they prune are compared together (`_across_section`).
SAME_MODELS = ("dataset", "model", "model_options", "protocols", "seeds", "epochs", "frames")


def _models_key(results: dict) -> str | None:
    """What accuracy benchmarks compared together share (None for other benchmarks)."""
    if results["benchmark"] != "accuracy":
        return None
    settings = saved_settings(results)
    return json.dumps([settings[key] for key in SAME_MODELS], sort_keys=True)


def _pruning_label(settings: dict, method: str) -> str:
    """How a benchmark pruned `method`'s models, in a few words ("default": from the
    benchmark's model, the default ramp)."""
    begin, end = ramp = tuple(settings["ramp"])
    parts = [*([f"from {settings['start_ratio']:g}x"] if settings["start_ratio"] else []),
             *(["from dense"] if settings["from_dense"] else []),
             *(["distilled"] if settings["distill"] else []),
             *([f"ramp {100 * begin:g}-{end:.0%}"] if ramp != AccuracyBench.ramp else [])]
    if method in MULTI_RATE_METHODS and not settings["consistent_extraction"]:
        parts.append("ranked extraction")
    if method == "mrmp":
        parts += [*([f"{settings['rates_per_step']} rates per step"]
                    if settings["rates_per_step"] else []),
                  *([f"rate weights {'/'.join(f'{w:g}' for w in settings['rate_weights'])}"]
                    if settings["rate_weights"] else []),
                  *([f"self-distillation {settings['self_distillation']:g}"
                     f"{_teacher_words(settings)}"] if settings["self_distillation"] else [])]
    if strength := _tcp_strength(settings, [method]):
        parts.append(f"supervision strength {strength}")
    if method == "tcp_block":
        parts += [*([f"density {settings['block_density']:g}"]
                    if settings["block_density"] != AccuracyBench.block_density else []),
                  *({"nonzero": ["nominal rate"], "macs": ["MACs budget"]}.get(
                      settings["block_budget"], []))]
    return ", ".join(parts) or "default"


# The budgets whose tables are followed by the test leads of the models chosen in them: the
# weights a pruned model keeps, and the MACs that decide its speed.
LEAD_SIZES = ("nonzero_parameters", "compacted_macs")


def _across_section(group: list[tuple[dict, str]]) -> list[str]:
    """The best model within each budget of every method over several benchmarks of one
    dataset (`group`: their results and page folders), each chosen on validation among every
    rate and setting, its setting named beside its size."""
    rows, shapes, methods = [], [], set()
    for results, _ in group:
        settings = saved_settings(results)
        methods |= set(settings["methods"])
        for row in accuracy_summary(results["records"], shape_size(settings["block_budget"])):
            if row["method"] not in UNPRUNED_METHODS:
                rows.append({**row, "variant": _pruning_label(settings, row["method"])})
            elif row["method"] == "dense" and not any(r["method"] == "dense" for r in rows):
                rows.append(row)
        shapes += small_dense_shapes(results["records"])
    name = group[0][0]["settings"]["dataset"].split(":")[0]
    shown = [m for m in BENCH_METHODS if m in methods]
    tables = []
    for size in BUDGET_SIZES:
        tables.append(budget_table(rows, shown, size, shapes))
        if size in LEAD_SIZES:
            tables.append(budget_leads(rows, shown, shapes, size))
    return [f"## {DATASET_TITLES.get(name, name)}: the best model within a budget across "
            f"{len(group)} benchmark{'s' if len(group) > 1 else ''}", "",
            "Each method's model of the best validation accuracy among every rate and pruning "
            "setting of " + ", ".join(f"[{folder}]({folder}/{RESULTS_FILE})"
                                      for _, folder in group)
            + " (the setting after its size; small dense models name their shape): choosing "
              "the setting on validation is one more choice a user can make without the test "
              "split, at the cost of one training per setting.", "",
            *[line for table in tables if table for line in (table, "")]]


def _recipes_section(results: dict, folder: str) -> list[str]:
    settings = results["settings"]
    trained = f"pruned with {settings['prune']}" if settings.get("prune") else "dense"
    datasets = ", ".join(DATASET_TITLES.get(d, d) for d in settings["datasets"])
    return [f"## Training recipes, {settings['model']}, {trained}: {datasets}", "",
            recipes_line(results), "", f"Command: `{results['command']}`", "",
            machine_line(results), "", *([settings["note"], ""] if settings.get("note") else []),
            recipe_tables(results["summary"]),
            f"Raw results: [{folder}/{RESULTS_FILE}]({folder}/{RESULTS_FILE}).", ""]


def _options_text(options: dict | None) -> str:
    if not options:
        return ""
    return " with " + ", ".join(f"`{key}={value}`" for key, value in options.items())


def _table_section(results: dict, folder: str, title: str, table: str) -> list[str]:
    return [f"## {title}", "", f"Command: `{results['command']}`", "", machine_line(results),
            "", table, f"Raw results: [{folder}/{RESULTS_FILE}]({folder}/{RESULTS_FILE}).", ""]


def _dataset_of(results: dict) -> str | None:
    """The dataset a benchmark measures (None for one of several datasets or of none)."""
    settings = results.get("settings") or {}
    if results["benchmark"] == "accuracy":
        return settings["dataset"].split(":")[0]
    datasets = settings.get("datasets") or []
    return datasets[0] if len(datasets) == 1 else None


def _date(results: dict) -> str:
    return results.get("machine", {}).get("date", "")


def _demoted(lines: list[str], levels: int) -> list[str]:
    """Section lines with their headings `levels` deeper."""
    return [re.sub(r"^(#+) ", "#" * levels + r"\1 ", line, flags=re.MULTILINE)
            for line in lines]


def _copy_results(out_dir: Path, target: Path) -> set[str]:
    """Copies a benchmark folder's results and plots into `target`; the names copied."""
    target.mkdir(parents=True, exist_ok=True)
    copied = set()
    for name in (RESULTS_FILE, ACCURACY_PLOT, DISCONNECTED_PLOT, WEIGHTS_PLOT, COMPACTED_PLOT):
        if (out_dir / name).exists():
            if (out_dir / name).resolve() != (target / name).resolve():  # not its own copy
                shutil.copyfile(out_dir / name, target / name)
            copied.add(name)
    return copied


def _section(results: dict, folder: str, copied: set[str]) -> list[str]:
    """One benchmark's section, headed `## title`."""
    from keras_gcnprune.bench.export import export_table
    from keras_gcnprune.bench.speed import speed_table
    from keras_gcnprune.bench.streaming import detection_table, stream_table

    kind = results["benchmark"]
    if kind == "accuracy":
        return _accuracy_section(results, folder, copied)
    if kind == "recipes":
        return _recipes_section(results, folder)
    title, table = {
        "speed": lambda: ("Training step time against dense", speed_table(results)),
        "stream": lambda: ("The app loop on a recorded stream", stream_table(results)),
        "detect": lambda: ("Gesture onsets in continuous recordings (SHREC'21's rule)",
                           detection_table(results)),
    }.get(kind, lambda: (_export_title(results), export_table(results)))()
    return _table_section(results, folder, title, table)


def _archived(text: str, commit: str) -> str:
    """A page whose data left the repository: no plots, each benchmark's raw results named at
    the commit that last held them, its other links as plain folder names."""
    text = re.sub(r"^!\[.*\n", "", text, flags=re.MULTILINE)
    text = re.sub(rf"Raw results: \[results/([^/\]]+)/{RESULTS_FILE}\]\([^)]*\)\.",
                  rf"Raw results: `git show {commit}:docs/results/\1/{RESULTS_FILE}`.", text)
    return re.sub(r"\[results/([^\]]+)\]\(results/[^)]*\)", r"`\1`", text)


OTHER = "Speed, export and the app loop"
ACROSS = "Across datasets"


def write_docs(out_dirs: Sequence[str | Path], to: str | Path, command: str = "",
               archived_at: str | None = None) -> Path:
    """Writes a results page from benchmark output folders, one part per dataset: the best
    model within each budget first, then every benchmark, newest first.

    Args:
        out_dirs: `--out` folders of `gcnprune bench accuracy`, `speed` or `export` (or of
            this project's scripts); each one's files are copied into `results/<its folder
            name>` beside the page.
        to: The Markdown file to write.
        command: The command that generated the page, recorded in it.
        archived_at: Write an archive page instead: nothing is copied and no plot is shown;
            each section names its raw results at this git commit.

    Returns:
        The path of the Markdown file.

    Example:
        >>> write_docs(["runs/bench/accuracy"], "docs/results.md")  # doctest: +SKIP
    """
    to = Path(to)
    loaded = {out_dir: load_results(out_dir) for out_dir in map(Path, out_dirs)}
    parts: dict[str, list[tuple[dict, str, list[str]]]] = {}
    groups: dict[tuple[str, str], list[tuple[dict, str]]] = {}
    for out_dir, results in loaded.items():
        folder = f"results/{out_dir.name}"
        copied = set() if archived_at else _copy_results(out_dir, to.parent / folder)
        lines = _section(results, folder, copied)
        dataset = _dataset_of(results)
        part = DATASET_TITLES.get(dataset, dataset) if dataset else \
            (ACROSS if results["benchmark"] == "recipes" else OTHER)
        parts.setdefault(part, []).append((results, folder, lines))
        if results["benchmark"] == "accuracy":
            groups.setdefault((part, _models_key(results)), []).append((results, folder))
    order = sorted(parts, key=lambda part: (part in (ACROSS, OTHER), part == OTHER, part))
    lines = ["# Archived results" if archived_at else "# Results", "",
             "Generated from benchmark runs by `benchmarks/results_page.py`; do not edit by hand."
             + (f" Command: `{command}`." if command else ""), "",
             *([f"Superseded by later measurements and kept for the record; their data left the "
                f"repository after commit {archived_at}, where each section names them.", ""]
               if archived_at else []),
             "One part per dataset: the best model within each budget first (chosen on "
             "validation across the benchmarks of the same models), then every benchmark, "
             "newest first.", "",
             *[f"- [{part}](#{_anchor(part)})" for part in order], ""]
    for part in order:
        lines += [f"## {part}", ""]
        for (group_part, _), group in groups.items():
            if group_part == part:
                lines += _demoted(_across_section(group), 1)
        for _, _, section in sorted(parts[part], key=lambda item: _date(item[0]),
                                    reverse=True):
            lines += _demoted(section, 1)
    text = "\n".join(lines)
    to.write_text(_archived(text, archived_at) if archived_at else text)
    return to


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dirs", nargs="+", help="Benchmark output folders.")
    parser.add_argument("--to", default="docs/results.md",
                        help="The Markdown page to write; results.json files and plots are "
                             "copied into the results/ folder beside it.")
    parser.add_argument("--archived-at", metavar="COMMIT",
                        help="Write an archive page: copy nothing, show no plot, and name each "
                             "benchmark's raw results at this commit.")
    args = parser.parse_args()
    try:
        path = write_docs(args.out_dirs, args.to, command=shlex.join(
            ["python", "benchmarks/results_page.py", *sys.argv[1:]]),
            archived_at=args.archived_at)
    except FileNotFoundError as error:
        raise SystemExit(f"Error: {error}") from None
    print(f"Written: {path}")


if __name__ == "__main__":
    main()
