"""Option parsing and help texts shared by the `gcnprune` commands."""

from __future__ import annotations

import json

import click

DATASET_HELP = (
    "Dataset spec: NAME:PATH with NAME one of sbu, fpha, msr, jhmdb, ntu, npz, landmarks "
    "(<class>/<seq>/<frame>.npy MediaPipe hand landmarks, a folder or .zip); a bare NAME "
    "reads $GCNPRUNE_DATA/<its folder> (default ../shared/data); a .npz path; or 'synthetic' "
    "(built-in hand gestures, 'synthetic:SEED' for another seed)."
)
PROTOCOL_HELP = (
    "Named split: fold1..fold5 (sbu), official (fpha), cross_subject (msr, synthetic), "
    "split1..split3 (jhmdb), xsub/xview (ntu), mod5 (landmarks), given (npz with "
    "meta_partition). "
    "Default: the dataset's first protocol."
)
ON_ERROR_HELP = "What to do with a bad file: 'raise' stops with its path and reason, 'skip' " \
                "leaves it out and warns with the count."


def parse_options(pairs: tuple[str, ...]) -> dict:
    """`("heads=4", "widths=[32,64]")` -> `{"heads": 4, "widths": [32, 64]}`: each VALUE read
    as JSON, or kept as a string when it is not; a usage error for a pair without `=`."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE.", param_hint="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def comma_separated(value: str, convert: type, what: str) -> tuple:
    """`value`'s comma-separated items, each `convert`ed; a usage error naming `what` the
    items should be where one is not."""
    try:
        return tuple(convert(item) for item in value.split(",") if item.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of {what}.") from None


def parse_names(value: str | None) -> tuple[str, ...] | None:
    """`"dense, tcp"` -> `("dense", "tcp")`; None stays None."""
    return None if value is None else comma_separated(value, str.strip, "names")


def parse_rates(value: str | None) -> tuple[float, ...] | None:
    """`"0.9,0.99"` -> `(0.9, 0.99)`; a usage error for anything but rates in (0, 1)."""
    if value is None:
        return None
    rates = comma_separated(value, float, "rates")
    if not rates or not all(0 < r < 1 for r in rates):
        raise click.BadParameter(f"rates must be in (0, 1), got {value!r}.")
    from keras_gcnprune.pruning.multirate import MAX_RATES

    if len(rates) > MAX_RATES:
        raise click.BadParameter(f"{len(rates)} rates given; at most {MAX_RATES} are accepted.")
    return rates


def parse_ramp(value: str | None) -> tuple[float, float] | None:
    """`"0,0.3"` -> `(0.0, 0.3)`; a usage error unless 0 <= begin < end <= 1."""
    if value is None:
        return None
    try:
        begin, end = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not BEGIN,END (two fractions of the training, "
                                 "e.g. 0,0.3).") from None
    from keras_gcnprune.training.run import check_ramp

    try:
        check_ramp(begin, end)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return begin, end


def parse_budgets(value: str | None) -> tuple[int, ...] | None:
    """`"3000,1500"` -> `(3000, 1500)`; a usage error for anything but positive counts."""
    if value is None:
        return None
    budgets = comma_separated(value, int, "weight counts")
    if not budgets or min(budgets) < 1:
        raise click.BadParameter(f"budgets must be positive weight counts, got {value!r}.")
    return budgets


def parse_rate_weights(value: str | None) -> tuple[float, ...] | None:
    """`"1,2,5,10"` -> `(1.0, 2.0, 5.0, 10.0)`; a usage error for anything but positive
    numbers (their count is checked against the rates where both are known)."""
    if value is None:
        return None
    weights = comma_separated(value, float, "numbers")
    if not weights or min(weights) <= 0:
        raise click.BadParameter(f"rate weights must be positive numbers, got {value!r}.")
    return weights


def parse_streams(value: str) -> tuple[str, ...]:
    """`"joint,bone"` -> `("joint", "bone")`: input streams, each one of
    `keras_gcnprune.data.STREAMS`; a usage error names an unknown one."""
    from keras_gcnprune.data import STREAMS

    streams = parse_names(value)
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams:
        raise click.BadParameter(f"unknown streams {unknown or value!r}; choose from {STREAMS}.")
    return streams
