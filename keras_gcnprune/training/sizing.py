"""Dense models sized to a weight budget: the baseline every pruned model is measured against.

A pruned model at rate `r` keeps `budget_at_rate` weights. The same family built narrower, with
about that many weights, and trained from scratch for the same number of epochs is what a user
gets without pruning: `width_matched_options` finds its widths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import keras

from keras_gcnprune import models
from keras_gcnprune.data import SkeletonDataset
from keras_gcnprune.pruning import BLOCK_DENSITY, requested_weights
from keras_gcnprune.pruning.config import check_start_ratio
from keras_gcnprune.pruning.masks import prunable_entries
from keras_gcnprune.reports import model_costs
from keras_gcnprune.training.directory import load_model_file
from keras_gcnprune.training.run import TrainConfig, build_model

FACTORS = (1 / 64, 16.0)  # width multipliers searched
# What a size budget counts (a key of `keras_gcnprune.reports.model_costs`), and its unit.
COSTS = {"parameters": "weights", "macs": "MACs"}


def _check_cost(cost: str) -> None:
    """Refuses a size budget's cost that is not a key of `COSTS`."""
    if cost not in COSTS:
        raise ValueError(f"Unknown cost {cost!r}; choose one of {', '.join(COSTS)}.")


def budget_at_rate(model: keras.Model, rate: float, include_adjacency: bool = True) -> int:
    """The nonzero weights of `model` pruned at `rate`: the weights pruning leaves alone
    (biases, normalization; the learned adjacencies too when not pruned) plus the kept share
    `round(pruned entries * (1 - rate))`, at least one, of the pruned ones.

    Example:
        >>> model = models.build("attention_gcn", "sbu_pair", num_classes=8, frames=32)
        >>> budget_at_rate(model, 0.9) < model_costs(model)["parameters"] / 5
        True
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate}.")
    return (model_costs(model)["parameters"] - prunable_entries(model, include_adjacency)
            + requested_weights(model, rate, include_adjacency))


def rate_for_budget(model: keras.Model, budget: int, include_adjacency: bool = True) -> float:
    """The pruning rate at which `model` keeps `budget` nonzero weights, biases and
    normalization included: the inverse of `budget_at_rate`.

    Args:
        model: The model to prune.
        budget: Nonzero weights to keep, more than the weights pruning leaves alone and fewer
            than all of them.
        include_adjacency: The learned adjacencies are pruned too (see `prunable_weights`).

    Returns:
        The rate, such that `budget_at_rate(model, rate) == budget`.

    Raises:
        ValueError: the budget is out of reach (the message gives the reachable range).

    Example:
        >>> model = models.build("attention_gcn", "sbu_pair", num_classes=8, frames=32)
        >>> budget_at_rate(model, rate_for_budget(model, 2000))
        2000
    """
    entries = prunable_entries(model, include_adjacency)
    unpruned = model_costs(model)["parameters"] - entries
    if not unpruned < budget < unpruned + entries:
        raise ValueError(
            f"A budget of {budget} nonzero weights is out of reach for {model.name}: it has "
            f"{unpruned + entries} weights, {unpruned} of which pruning leaves alone (biases, "
            "normalization" + ("" if include_adjacency else ", adjacencies") + "); give a "
            f"budget between {unpruned + 1} and {unpruned + entries - 1}.")
    return 1.0 - (budget - unpruned) / entries


def block_rate_for_budget(model: keras.Model, budget: int, block_density: float = BLOCK_DENSITY,
                          include_adjacency: bool = True, reachable_only: bool = False,
                          cost: str = "parameters", at_most: bool = False) -> float:
    """The rate at which TCP inside channel blocks (`block_density`) leaves `model`, once
    compacted (`keras_gcnprune.pruning.compact`), the weight count closest to `budget`: a
    block-pruned model's size is that of its compacted model, whose dead channels lose their
    biases and normalization too, so pruning it at the rate that keeps `budget` nonzero
    weights would leave it far smaller than the budget. Channels come whole, so the count
    moves in steps; the selection is made on `model`'s current weights (their magnitudes
    rank the channels), and its masks are restored afterwards. The rate keeps `STEP_MARGIN`
    fewer weights than the step's full block, so that training, which moves the weights and
    with them the step's edge, stays on that step (half way into it when it is narrower).
    Below the smallest compacted model (one channel in every group that can be narrowed), the
    rate gives that model, unless `reachable_only`. With `cost="macs"` the budget is the
    compacted model's multiply-accumulates per sequence instead, what its speed follows;
    `at_most` takes the closest step at or under the budget, for a budget that is a ceiling.

    Args:
        model: The model to prune.
        budget: Weights of the compacted model, biases and normalization included (with
            `cost="macs"`: its MACs per sequence).
        block_density: The fraction of a channel block's weights that pruning keeps.
        include_adjacency: The learned adjacencies are pruned too (see `prunable_weights`).
        reachable_only: Refuse a budget below the smallest compacted model (a benchmark
            comparing methods at one rate takes that model instead).
        cost: What the budget counts, a key of `COSTS`.
        at_most: Never a step above the budget (the closest one otherwise).

    Returns:
        The rate, rounded to 6 decimals.

    Raises:
        ValueError: the budget is more than the model's weights (MACs), or with
            `reachable_only`, less than its smallest compacted model's; an unknown `cost`.

    Example:
        >>> model = models.build("attention_gcn", "sbu_pair", num_classes=8, frames=32)
        >>> rate = block_rate_for_budget(model, 1500)
        >>> rate_for_budget(model, 1500) - rate > 0.005  # channels of fewer weights die
        True
    """
    from keras_gcnprune.pruning import assign_masks, compact, topologically_consistent_masks
    from keras_gcnprune.pruning.compaction import kept_channels
    from keras_gcnprune.pruning.topology import current_masks

    _check_cost(cost)
    unit = COSTS[cost]
    saved = current_masks(model)
    counts: dict[float, int] = {}
    by_channels: dict[tuple, int] = {}  # rates of one channel step compact to one shape

    def compacted(rate: float) -> int:
        if rate not in counts:
            assign_masks(model, topologically_consistent_masks(
                model, rate, block_density=block_density, include_adjacency=include_adjacency))
            channels = kept_channels(model)
            if channels not in by_channels:
                by_channels[channels] = model_costs(compact(model))[cost]
            counts[rate] = by_channels[channels]
        return counts[rate]

    try:
        if budget > compacted(0.0):
            raise ValueError(f"A budget of {budget:,} {unit} is more than {model.name} has "
                             f"({compacted(0.0):,}); give a smaller budget.")
        top = 1.0 - 1.0 / prunable_entries(model, include_adjacency)
        if reachable_only and budget < compacted(top):
            raise ValueError(
                f"A budget of {budget:,} {unit} once compacted is below the smallest compacted "
                f"{model.name} ({compacted(top):,} {unit}: one channel in every group that can "
                f"be narrowed, with the learned adjacencies and biases left); give at least "
                f"that, or count nonzero weights with unstructured TCP (block_density None, "
                f"--block-density none).")
        low, high = _step_down(compacted, 0.0, top, max(budget, compacted(top)))
        above, below = compacted(low), compacted(high)
        if at_most or budget - below <= above - budget:
            start = high
            margin = _inside_step(start)
            if 2 * margin - start <= top and compacted(2 * margin - start) == below:
                return round(margin, 6)  # the step reaches past twice the margin
            end = top if compacted(top) == below else _step_down(compacted, high, top,
                                                                 below - 1)[0]
        else:
            start = 0.0 if compacted(0.0) == above else _step_down(compacted, 0.0, low,
                                                                   above)[1]
            end = low
        return round(min(_inside_step(start), (start + end) / 2), 6)
    finally:
        assign_masks(model, saved)


def _inside_step(start: float) -> float:
    """The rate `STEP_MARGIN` into the step that begins at `start`: at its first rate the
    step's block is full; higher rates leave zeros in it."""
    return 1.0 - (1.0 - STEP_MARGIN) * (1.0 - start)


def _step_down(count, low: float, high: float, threshold: int) -> tuple[float, float]:
    """The rates either side of where `count` (non-increasing in the rate, above `threshold`
    at `low` and not at `high`) falls to `threshold` or below, `BISECTION_STEPS` halvings
    apart."""
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) > threshold else (low, middle)
    return low, high


BISECTION_STEPS = 20  # rates to 1e-6: below one weight for models of under a million
STEP_MARGIN = 0.03  # the share of a full channel block that block_rate_for_budget leaves empty


def weights_of(config: TrainConfig, dataset: SkeletonDataset) -> int:
    """The weights (biases and normalization included, masks not) of the run's model."""
    return model_costs(build_model(config, dataset))["parameters"]


def width_matched_options(config: TrainConfig, dataset: SkeletonDataset, weights: int,
                          fixed: tuple[str, ...] = (), cost: str = "parameters") -> dict:
    """Model options of the run's family, widths scaled (`keras_gcnprune.models.scaled_options`)
    so that the model's weights are the closest to `weights` that its widths allow (with
    `cost="macs"`, its MACs per sequence to that many MACs).

    Below the family's smallest model (every width 1) the smallest is returned, and above the
    widest searched (16 times the given widths) the widest: the trained model's metrics say
    what it weighs.

    Args:
        config: The run whose model family, options and data shapes to keep.
        dataset: The dataset (layout, classes, channels).
        weights: The weight count to match (with `cost="macs"`: the MACs).
        fixed: Width options of `config.model_options` to keep (a shape from
            `keras_gcnprune.models.width_variants`); the other widths are scaled.
        cost: What is matched, a key of `COSTS`.

    Returns:
        The `model_options` of the matched model.

    Example:
        >>> from keras_gcnprune.data import load_dataset
        >>> from keras_gcnprune.data import Preprocessing
        >>> config = TrainConfig(model="attention_gcn", preprocessing=Preprocessing())
        >>> options = width_matched_options(config, load_dataset("synthetic"), 5000)
        >>> options
        {'heads': 3, 'head_channels': 3, 'graph_channels': 10}
        >>> weights_of(replace(config, model_options=options), load_dataset("synthetic"))
        5506
    """
    if weights < 1:
        raise ValueError(f"weights must be a positive count, got {weights}.")
    _check_cost(cost)

    def options_at(log_factor: float) -> dict:
        return models.scaled_options(config.model, math.exp(log_factor), config.model_options,
                                     fixed)

    counts: dict[str, int] = {}  # by options: neighbouring factors round to the same widths

    def count(log_factor: float) -> int:
        options = options_at(log_factor)
        key = json.dumps(options, sort_keys=True)
        if key not in counts:
            counts[key] = model_costs(build_model(replace(config, model_options=options),
                                                  dataset))[cost]
        return counts[key]

    low, high = (math.log(f) for f in FACTORS)
    if count(low) >= weights:
        return options_at(low)
    if count(high) <= weights:
        return options_at(high)
    for _ in range(24):  # the count only grows with the widths
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) < weights else (low, middle)
    below, above = count(low), count(high)
    return options_at(low if weights - below < above - weights else high)


def pruning_start(config: TrainConfig, dataset: SkeletonDataset, budgets: Sequence[int],
                  ratio: float, include_adjacency: bool = True) -> tuple[dict, tuple[float, ...]]:
    """The model to prune to `budgets` nonzero weights when it is not given: the run's family
    with widths scaled (`width_matched_options`) to about `ratio` times the largest budget, and
    the rate that prunes it to each budget (one budget for most methods; several for MRMP,
    which trains them all on one model).

    Pruning a model many times wider than a small budget scatters the few kept weights over
    many channels, whose biases and normalization then take most of the budget; a start a few
    times the budget leaves a model that trains.

    Args:
        config: The run (its model family, options and data shapes).
        dataset: The dataset (layout, classes, channels).
        budgets: Nonzero weights to keep, biases and normalization included.
        ratio: The starting model's weights over the largest budget, above 1.
        include_adjacency: The learned adjacencies are pruned too (see `rate_for_budget`).

    Returns:
        `(model_options, rates)`, one rate per budget, rounded to 6 decimals.

    Raises:
        ValueError: a ratio of 1 or less, no budget, or a start that cannot be pruned to a
            budget.

    Example:
        >>> from keras_gcnprune.data import Preprocessing, load_dataset
        >>> gestures = load_dataset("synthetic")
        >>> config = TrainConfig(model="attention_gcn", preprocessing=Preprocessing())
        >>> options, rates = pruning_start(config, gestures, [1500], ratio=8)
        >>> options["heads"], round(rates[0], 3)
        (5, 0.891)
    """
    check_start_ratio(ratio)
    if not budgets:
        raise ValueError("pruning_start needs at least one budget, got none.")
    options = width_matched_options(config, dataset, round(ratio * max(budgets)))
    start = build_model(replace(config, model_options=options), dataset)
    try:
        rates = [rate_for_budget(start, budget, include_adjacency) for budget in budgets]
    except ValueError as error:
        raise ValueError(f"A start of {ratio} times the budget ({options}) cannot be pruned to "
                         f"it: {error} Give a larger ratio.") from None
    return options, tuple(round(rate, 6) for rate in rates)


def budget_rates(model: keras.Model, budgets: Sequence[int], block_density: float | None = None,
                 include_adjacency: bool = True) -> tuple[float, ...]:
    """The pruning rate at which `model` keeps each of `budgets`: nonzero weights, biases and
    normalization included (`rate_for_budget`), or with `block_density`, the weights of its
    compacted model (`block_rate_for_budget`)."""
    if block_density is None:
        return tuple(rate_for_budget(model, budget, include_adjacency) for budget in budgets)
    return tuple(block_rate_for_budget(model, budget, block_density, include_adjacency,
                                       reachable_only=True) for budget in budgets)


def resolve_budgets(config: TrainConfig, dataset: SkeletonDataset) -> TrainConfig:
    """`config` with its pruning's budgets turned into rates on the model the training starts
    from: the initial model, the model of the configured widths under the run's seed, or where
    that model has more weights than the start ratio times the largest budget, the family's
    model of about that many weights (its widths then in the returned `model_options`). A
    `mac_share` becomes the rate at which that model, pruned in channel blocks and compacted,
    keeps at most that share of its MACs (the closest channel step at or under it).
    `keras_gcnprune.training.train` calls it first; a configuration without budgets is returned
    as it is.

    Args:
        config: The run; its `pruning.budgets` (and `start_ratio`) are resolved.
        dataset: The loaded dataset (layout, classes, channels).

    Returns:
        The configuration with the pruning's `rate` (mrmp: `rates`), no budgets and no
        `mac_share`.

    Raises:
        ValueError: a budget the model cannot reach (with the reachable range).

    Example:
        >>> from keras_gcnprune.data import Preprocessing, load_dataset
        >>> from keras_gcnprune.pruning import PruningConfig
        >>> config = TrainConfig(model="attention_gcn", preprocessing=Preprocessing(),
        ...                      pruning=PruningConfig(method="tcp", budgets=(1500,)))
        >>> resolved = resolve_budgets(config, load_dataset("synthetic"))
        >>> resolved.model_options["heads"], round(resolved.pruning.rate, 3)
        (3, 0.771)
    """
    pruning = config.pruning
    if pruning is None or not pruning.sized:
        return config
    model = starting_model(config, dataset)
    if pruning.mac_share is not None:
        budget = round(pruning.mac_share * model_costs(model)["macs"])
        rate = block_rate_for_budget(model, budget, pruning.block_density,
                                     pruning.include_adjacency, reachable_only=True, cost="macs",
                                     at_most=True)
        return replace(config, pruning=replace(pruning, mac_share=None, rate=rate))
    if not config.initial_model and starts_smaller(model_costs(model)["parameters"],
                                                   pruning.budgets, pruning.start_ratio):
        options, _ = pruning_start(config, dataset, pruning.budgets, pruning.start_ratio,
                                   pruning.include_adjacency)
        config = replace(config, model_options=options)
        model = starting_model(config, dataset)
    rates = budget_rates(model, pruning.budgets, pruning.block_density,
                         pruning.include_adjacency)
    rate = {"rates": rates} if pruning.method == "mrmp" else {"rate": rates[0]}
    return replace(config, pruning=replace(pruning, budgets=(), start_ratio=None, **rate))


def starting_model(config: TrainConfig, dataset: SkeletonDataset) -> keras.Model:
    """The model a training of `config` starts from: its initial model (a trained run's,
    `prune --from`), or else the model of its widths built under the run's seed.

    Args:
        config: The run.
        dataset: The loaded dataset (layout, classes, channels).

    Returns:
        The model, before any pruning.

    Example:
        >>> from keras_gcnprune.data import Preprocessing, load_dataset
        >>> config = TrainConfig(model="attention_gcn", preprocessing=Preprocessing())
        >>> starting_model(config, load_dataset("synthetic")).name
        'attention_gcn'
    """
    if config.initial_model:
        return load_model_file(Path(config.initial_model))
    keras.utils.set_random_seed(config.seed)
    return build_model(config, dataset)


def starts_smaller(weights: int, budgets: Sequence[int], ratio: float | None) -> bool:
    """Whether a model of `weights` is pruned to `budgets` from a smaller start: it has more
    weights than `ratio` times the largest budget. A start is never wider than the model.

    Example:
        >>> starts_smaller(130_000, [5_000], 4.0), starts_smaller(15_000, [5_000], 4.0)
        (True, False)
    """
    return ratio is not None and weights > ratio * max(budgets)
