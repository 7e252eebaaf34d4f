"""Brings this project's result folders written by older versions of the package up to date,
once, so that the package itself reads only what it writes today:

    python benchmarks/migrate_runs.py FOLDER [FOLDER ...]

Every run directory's `run.json` under the folders gets each training setting added since it
was written (`SETTINGS_ADDED`, with the value that trains as the run did then), and every
accuracy benchmark's `results.json` each benchmark setting whose behaviour then was not
today's default (`BEHAVIOUR_BEFORE_SETTING`). A file is rewritten only where something was
added; nothing else changes. When a setting whose default changes behaviour is added to
`TrainConfig`, `PruningConfig` or `AccuracyBench`, add it here with its old behaviour and run
this on the kept folders.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# Training settings added after runs were first recorded, each with the value that trains as
# a run did before the setting existed.
SETTINGS_ADDED = {("warmup_epochs",): 0, ("stream_windows",): 0, ("label_smoothing",): 0.0,
                  ("refit",): False, ("schedule",): "cosine", ("validation",): 0.0,
                  ("augmentation", "shear"): 0.0, ("augmentation", "crop"): 1.0,
                  ("pruning", "supervision_strength"): 0.1,
                  ("pruning", "rate_weights"): None, ("pruning", "consistent_extraction"): False,
                  ("pruning", "self_distillation"): 0.0,
                  ("pruning", "self_distillation_teacher"): "densest",
                  ("pruning", "budgets"): [], ("pruning", "start_ratio"): None,
                  ("pruning", "mac_share"): None}

# Accuracy-benchmark settings newer than some results whose behaviour then was not today's
# default (the others behaved as their default before they existed).
BEHAVIOUR_BEFORE_SETTING = {"block_budget": "nonzero", "consistent_extraction": False,
                            "streams": ["joint"], "refit": False, "block_density": 0.5,
                            "ramp": [0.1, 0.6]}


def with_added_settings(config: dict) -> dict:
    """A recorded training configuration with every `SETTINGS_ADDED` entry it lacks (a
    section it has as None, such as no augmentation, stays None)."""
    config = json.loads(json.dumps(config))
    for path, value in SETTINGS_ADDED.items():
        parent = config
        for key in path[:-1]:
            parent = parent.get(key)
            if not isinstance(parent, dict):
                break
        else:
            parent.setdefault(path[-1], value)
    return config


def migrated_run(record: dict) -> dict:
    """A `run.json` record with its configuration's added settings."""
    return {**record, "config": with_added_settings(record["config"])}


def migrated_results(results: dict) -> dict:
    """An accuracy benchmark's `results.json` with its settings' old behaviours recorded."""
    if results.get("benchmark") != "accuracy":
        return results
    return {**results, "settings": {**results["settings"], **{
        name: value for name, value in BEHAVIOUR_BEFORE_SETTING.items()
        if name not in results["settings"]}}}


MIGRATIONS = {"run.json": migrated_run, "results.json": migrated_results}


def migrate(folders: list[Path]) -> list[Path]:
    """Rewrites every `run.json` and `results.json` under `folders` that lacks something;
    returns the rewritten files."""
    rewritten = []
    for folder in folders:
        for name, migrated in MIGRATIONS.items():
            for path in sorted(folder.rglob(name)):
                before = json.loads(path.read_text())
                after = migrated(before)
                if after != before:
                    staged = path.with_name(f".{name}.migrating")
                    staged.write_text(json.dumps(after, indent=2) + "\n")
                    os.replace(staged, path)
                    rewritten.append(path)
    return rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="Result folders to migrate.")
    for path in migrate(parser.parse_args().folders):
        print(f"Migrated: {path}")


if __name__ == "__main__":
    main()
