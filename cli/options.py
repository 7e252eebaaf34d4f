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
    from keras_gcnprune.pruning.config import check_ramp

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


ITEM_PARSERS = {"rates": parse_rates, "weights": parse_rate_weights, "budgets": parse_budgets}


def pruning_options(*names: str, defaults: object | None = None):
    """A decorator adding the options of `PruningConfig`'s settings `names` (all where none
    is) to a command, generated from the settings' descriptions: one spelling, help text,
    choice list and bounds per setting. `begin` and `end` are one option, `--ramp BEGIN,END`,
    whose value arrives as `ramp`.

    Args:
        names: The settings.
        defaults: None: every option defaults to its setting's default. Otherwise options
            default to None (not given) and their help states `defaults`' value of the
            setting (a benchmark's, whose own defaults fill in what is not given).
    """
    from keras_gcnprune.pruning import pruning_settings

    settings = {setting.name: setting for setting in pruning_settings(*names)}
    options = [_ramp_option(settings["begin"], settings["end"], defaults)
               if name == "begin" else _pruning_option(setting, defaults)
               for name, setting in settings.items() if name != "end"]

    return lambda command: with_options(command, options)


def with_options(command, options: list):
    """`command` with `options` (click decorators) applied, the first one shown first."""
    for option in reversed(options):
        command = option(command)
    return command


def option_spelling(setting) -> str:
    """The command-line spelling of a `PruningConfig` setting, `--on/--off` for a flag."""
    described = setting.metadata
    flags = described.get("flags")
    return f"--{flags[0]}/--{flags[1]}" if flags else \
        f"--{described.get('option', setting.name).replace('_', '-')}"


def _pruning_option(setting, defaults: object | None):
    described = setting.metadata
    declaration = option_spelling(setting)
    help = described["help"] + _default_help(setting, defaults)
    default = setting.default if defaults is None else None
    extra = {}
    if "choices" in described:
        extra["type"] = click.Choice(described["choices"])
    elif "bounds" in described:
        low, high, low_open, high_open = described["bounds"]
        kind = click.IntRange if "int" in str(setting.type) else click.FloatRange
        extra["type"] = kind(low, high, **({"min_open": low_open, "max_open": high_open}
                                           if kind is click.FloatRange else {}))
        if setting.default is not None and "unset" in described and defaults is None:
            extra["type"] = NoneOr(extra["type"], described["unset"])
            help += f" 'none': {described['unset']}."
    elif "items" in described:
        parse = ITEM_PARSERS[described["items"]]
        unset = None if defaults is not None else setting.default  # an empty list's default
        extra["callback"] = lambda _, __, value: unset if value is None else parse(value)
        default = None if defaults is not None or not setting.default else \
            _shown(setting.default)
    return click.option(declaration, setting.name, default=default, help=help, **extra)


class NoneOr(click.ParamType):
    """`none` (any case) as None, any other value as `kind` converts it: a setting whose
    default is a value and whose None means something of its own."""

    def __init__(self, kind: click.ParamType, meaning: str):
        self.kind = kind
        self.meaning = meaning
        self.name = f"{kind.name}|none"

    def convert(self, value, param, ctx):
        if param is not None and value == param.default:
            return value  # a library default that the library resolves
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        try:
            return self.kind.convert(value, param, ctx)
        except click.BadParameter as error:
            self.fail(f"{error.message} Or 'none': {self.meaning}.", param, ctx)


def _default_help(setting, defaults: object | None) -> str:
    """The default the help states where click does not show it: a None default's meaning,
    and every default of a command whose options default to None (`defaults`')."""
    value = setting.default if defaults is None else getattr(defaults, setting.name)
    if value is None:
        unset = setting.metadata.get("unset")
        return f" Default: {unset}." if unset else ""
    if defaults is None:
        return ""
    flags = setting.metadata.get("flags")
    return f" Default: --{flags[0] if value else flags[1]}." if flags else \
        f" Default: {_shown(value)}."


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(f"{item:g}" for item in value)
    return "none" if value is None else str(value)


def _ramp_option(begin, end, defaults: object | None):
    help = (f"{begin.metadata['help'][:-1]}, and "
            f"{end.metadata['help'][0].lower()}{end.metadata['help'][1:]}")
    ramp = (begin.default, end.default) if defaults is None else defaults.ramp
    return click.option("--ramp", "ramp", default=None if defaults is not None else _shown(ramp),
                        metavar="BEGIN,END", callback=lambda _, __, value: parse_ramp(value),
                        help=help + (f" Default: {_shown(ramp)}." if defaults is not None
                                     else ""))


def renamed(old: str, new: str):
    """A hidden option of an old spelling, refused with a message naming its new one."""
    def refuse(context, parameter, value):
        if value is not None:
            raise click.UsageError(f"{old} is now {new}: give {new} instead.")

    return click.option(old, default=None, hidden=True, expose_value=False, callback=refuse)
