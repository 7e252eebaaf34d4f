"""The pruning specification: every setting of a pruning run, declared once.

`PruningConfig` is what `keras_gcnprune.training.train` prunes with, and each of its fields
carries its own description (`field.metadata`): its help text, its choices and, where a command
line reads it, its bounds and spelling. `gcnprune prune` and `gcnprune bench accuracy` build
their pruning options from these fields (`pruning_settings`), so that a setting is spelled,
defaulted and explained in one place. `PRUNING_PRESETS` names the pruning a benchmark
compares.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

import keras

from keras_gcnprune.pruning.callbacks import (
    METHODS,
    MULTI_RATE_METHODS,
    SCOPES,
    SUPERVISION,
    PruningCallback,
    check_method_options,
    pruning_callback,
)
from keras_gcnprune.pruning.multirate import (
    ALIGNMENT_SCOPES,
    SELF_DISTILLATION_TEACHERS,
    MultiRateModel,
    align_with_prior,
    check_self_distillation,
    sort_rates,
)
from keras_gcnprune.pruning.priors import PRIORS
from keras_gcnprune.pruning.schedules import PolynomialDecay
from keras_gcnprune.pruning.supervision import SUPERVISION_STRENGTH
from keras_gcnprune.pruning.tcp import check_block_density

RAMP_UPDATES = 20
# The block density of TCP in channel blocks where none is given (the `tcp_block` preset, the
# quickstart, `block_rate_for_budget`): whole channels, so that the compacted model keeps few
# zeros; it beat 0.5 at equal compacted weights (docs/guide/python.md, "Pruning").
BLOCK_DENSITY = 1.0
# `PruningConfig.block_density`'s default until the sizing is known: TCP in channel blocks
# (`BLOCK_DENSITY`) to a rate, unstructured TCP to a budget. At 90% the blocks were within a
# point of unstructured TCP on validation at a tenth of its compacted MACs; at a budget of 5,000
# weights (4% of the default ST-GCN) they lost 30-40 points, since ST-GCN's smallest compacted
# model (one channel in every group, with its learned adjacencies) is about that size
# (docs/pruning_defaults.md, docs/start_ratio.md).
BY_SIZING = "by sizing"


def _setting(default: Any, help: str, methods: tuple[str, ...] | None = None,
             **described: Any) -> Field:
    """A `PruningConfig` field with its description: `help` (prefixed with the `methods` that
    use the setting, None: every method), and optionally `choices` (the library constant),
    `bounds` (`(low, high, low_open, high_open)`, None for no limit), `items` (`"rates"` or
    `"weights"`: a comma-separated tuple of them), `flags` (`(on, off)` spellings of a
    boolean), `unset` (what a None default means) or `option` (the command-line spelling
    where it is not the field's)."""
    if methods:
        help = f"{', '.join(methods)}: {help[0].lower()}{help[1:]}"
    return field(default=default, metadata={"help": help, "methods": methods, **described})


def check_start_ratio(ratio: float) -> None:
    """Refuses a starting model's weights over its budget of 1 or less (see
    `PruningConfig.start_ratio`)."""
    if not ratio > 1.0:
        raise ValueError(f"The start ratio must be above 1 (the starting model's weights over "
                         f"the budget it is pruned to), got {ratio}.")


def check_ramp(begin: float, end: float) -> None:
    """Refuses a pruning ramp that does not start before it ends inside the training.

    Raises:
        ValueError: naming both fractions.
    """
    if not 0.0 <= begin < end <= 1.0:
        raise ValueError(f"need 0 <= begin < end <= 1, got begin={begin}, end={end}.")


@dataclass
class PruningConfig:
    """Pruning during a training run: a polynomial ramp from 0 to `rate`.

    Each field's `metadata["help"]` explains it; the command-line options of `gcnprune prune`
    and `gcnprune bench accuracy` are generated from these fields.

    Args:
        method: `"magnitude"` (the toolkit's algorithm), `"tcp"` (topologically consistent),
            `"srmp"` (band-stop masks with prior alignment, one rate) or `"mrmp"` (the same,
            several rates trained at once).
        rate: Final fraction of prunable weights removed (mrmp: the largest of `rates`).
        budgets: Instead of a rate (mrmp: of rates), the nonzero weights to keep, biases and
            normalization included (with `block_density`: the weights of the compacted model);
            one budget (mrmp: one per trained rate). A training resolves them to rates on its
            model before it starts (`keras_gcnprune.training.resolve_budgets`).
        mac_share: Instead of a rate, TCP in channel blocks to the rate at which the compacted
            model keeps at most this share of the model's multiply-accumulates per sequence
            (0.1: a tenth), what its speed follows; resolved to a rate on the model before
            training starts, like `budgets`. None: a rate or budgets.
        start_ratio: With `budgets` and a model of more weights than this many times the
            (largest) budget, prune a new model of the family whose widths are scaled to about
            that size instead; None: prune the configured model whatever the budget. Without
            budgets it means nothing and is None.
        begin: Fraction of the training steps after which pruning starts.
        end: Fraction of the training steps at which `rate` is reached; training goes on
            with the final masks after it.
        frequency: Steps between mask updates; None (default): the ramp takes
            `RAMP_UPDATES` updates whatever the length of training, so that a short training
            does not jump to `rate` in a few large steps.
        scope: `"layer"` or `"global"` ranking (magnitude only).
        supervision: Which propagations supervise TCP training (tcp only): `"both"`,
            `"accessibility"`, `"coaccessibility"`, `"feedback"` or `"none"`.
        supervision_strength: Scale of the gradient TCP's supervision gives the latent
            weights (tcp only; see `keras_gcnprune.pruning.TopologicalSupervision`).
        block_density: TCP only: select inside a block of whole channels filled to this
            density, so that `keras_gcnprune.export.compact` removes the other channels and
            the exported model gets smaller and faster; None: the paper's unstructured TCP,
            whose compacted model keeps nearly all the dense MACs. Default (`BY_SIZING`):
            `BLOCK_DENSITY` with a rate, None with budgets and for the other methods, which
            prune unstructured.
        rates: The rates an mrmp run trains (mrmp only).
        prior: Prior of the latent weights (srmp, mrmp): `"gaussian"`, `"laplace"`,
            `"uniform"`.
        alignment: Coefficient of the prior-alignment divergence (srmp, mrmp).
        alignment_scope: `"layer"` (each kernel aligned) or `"global"` (all weights pooled).
        rates_per_step: Rates evaluated per training step (mrmp; None: all).
        rate_weights: Weights of the per-rate losses, one per rate of `rates` in its order
            (mrmp; None: `MultiRateModel`'s default, which favours the sparsest rates).
        self_distillation: Weight of the sparser rates' distillation from a denser one in
            every step (mrmp; see `MultiRateModel`); 0: none.
        self_distillation_teacher: `"densest"` or `"next"` denser rate (mrmp; see
            `MultiRateModel`).
        consistent_extraction: srmp, mrmp: the model at each rate keeps the best-ranked
            topologically consistent subnetwork of that rate's size, so that no kept weight
            lies off every input-to-output path (`keras_gcnprune.pruning.extraction_masks`);
            False: the largest-ranked weights, as the band-stop methods were published. The
            other methods extract nothing: False for them, as their runs recorded before
            this setting.
        calibration_batches: Training batches that recalibrate batch normalization when a
            model is extracted at a rate (srmp, mrmp).
        log_dir: Folder for TensorBoard scalars per layer at every epoch end
            (`keras_gcnprune.reports.PruningSummaries`; None: none).
        include_adjacency: The rate applies to the learned joint-to-joint weights too
            (attention heads' adjacencies, graph convolutions' learned offsets), so that it
            counts every weight but biases and normalization (default); False: channel
            kernels only, for comparison with runs that left the adjacencies dense.

    Example:
        >>> config = PruningConfig(method="tcp", rate=0.9)
        >>> config.block_density, config.schedule(1000).end_step
        (1.0, 300)
    """

    method: str = _setting(
        "tcp", "magnitude: the Model Optimization Toolkit's algorithm; tcp: topologically "
        "consistent pruning (only weights on input-to-output paths); srmp: band-stop masks on "
        "weights aligned with a prior; mrmp: the same for several rates in one training (then "
        "gcnprune extract at any rate).", choices=METHODS)
    rate: float = _setting(0.9, "Final fraction of prunable weights removed (not mrmp).",
                           bounds=(0, 1, True, True))
    budgets: tuple[int, ...] = _setting(
        (), "Nonzero weights to keep, biases and normalization included, instead of --rate "
            "(mrmp: one per trained rate, comma separated, instead of --rates); the rate that "
            "keeps them is derived from the model. With --block-density: the weights of the "
            "compacted model (export --compact).", option="budget", items="budgets")
    mac_share: float | None = _setting(
        None, "Share of the model's MACs per sequence that its compacted model keeps at most "
              "(0.1: a tenth), instead of --rate: TCP in channel blocks to the rate that gets "
              "there, derived from the model.", ("tcp",), bounds=(0, 1, True, True))
    # chosen on validation across five datasets, each left out in turn (docs/start_ratio.md)
    start_ratio: float | None = _setting(
        4.0, "With a budget and without --from: when the model has more weights than this "
              "many times the budget (mrmp: the largest budget), prune a new model of the "
              "family whose widths are scaled to about that size instead (a small budget is "
              "met more accurately from a smaller start). To prune the model of the given "
              "widths whatever its size, give --rate instead of --budget.",
        bounds=(1, None, True, False))
    # the early ramp was the better on validation across five datasets for TCP and tcp_block
    # (docs/pruning_defaults.md)
    begin: float = _setting(0.0, "Fraction of training after which pruning starts.",
                            option="ramp")
    end: float = _setting(0.3, "Fraction of training at which the rate is reached (then "
                               "fine-tuning with the final masks).", option="ramp")
    frequency: int | None = _setting(
        None, "Training steps between mask updates.", bounds=(1, None, False, False),
        unset=f"the ramp takes {RAMP_UPDATES} updates")
    scope: str = _setting("layer", "Ranking per layer (the toolkit's) or global.",
                          ("magnitude",), choices=SCOPES)
    supervision: str = _setting(
        "both", "Propagations that supervise the latent weights during training "
                "(ablations: one direction, straight-through feedback instead, or the "
                "selection only).", ("tcp",), choices=tuple(SUPERVISION))
    supervision_strength: float = _setting(
        SUPERVISION_STRENGTH, "Scale of the gradient the supervision gives the latent "
                              "weights.", ("tcp",), bounds=(0, None, False, False))
    block_density: float | str | None = _setting(
        BY_SIZING, f"Keep the weights inside a block of whole channels that they fill to "
                   f"this density (1: whole channels), so that compaction (export --compact) "
                   f"removes the other channels: a smaller, faster exported model. Default: "
                   f"{BLOCK_DENSITY:g} with --rate, none with --budget.", ("tcp",),
        bounds=(0, 1, True, False),
        unset="unstructured TCP (the paper's; its compacted model keeps nearly every MAC)")
    rates: tuple[float, ...] = _setting(
        (), "The rates trained together, comma separated (e.g. 0.9,0.95,0.98,0.99).",
        ("mrmp",), items="rates")
    prior: str = _setting("gaussian", "Prior the latent weights are aligned with.",
                          MULTI_RATE_METHODS, choices=tuple(PRIORS))
    alignment: float = _setting(10.0, "Weight of the prior-alignment divergence in the loss.",
                                MULTI_RATE_METHODS, bounds=(0, None, False, False))
    alignment_scope: str = _setting(
        "layer", "Align each kernel with the prior, or all weights pooled.",
        MULTI_RATE_METHODS, choices=ALIGNMENT_SCOPES)
    rates_per_step: int | None = _setting(
        None, "Rates evaluated per training step: the largest and others drawn at random.",
        ("mrmp",), bounds=(1, None, False, False), unset="all")
    rate_weights: tuple[float, ...] | None = _setting(
        None, "Weights of the per-rate losses, one per trained rate in its order, comma "
              "separated.", ("mrmp",), items="weights",
        unset="1/sqrt(1 - rate), favouring the sparsest")
    self_distillation: float = _setting(
        0.0, "Weight of the sparser rates' KL divergence from a denser rate's predictions "
             "in every step (0: none).", ("mrmp",), bounds=(0, None, False, False))
    self_distillation_teacher: str = _setting(
        "densest", "Each sparser rate learns from the densest rate of the step or from the "
                   "next denser one.", ("mrmp",), choices=SELF_DISTILLATION_TEACHERS)
    consistent_extraction: bool = _setting(
        True, "The model at each rate keeps the best-ranked subnetwork of that size "
              "whose every weight lies on an input-to-output path (default), or the "
              "largest-ranked weights, as the band-stop methods were published.",
        MULTI_RATE_METHODS, flags=("consistent-extraction", "ranked-extraction"))
    calibration_batches: int = _setting(
        10, "Training batches that recalibrate batch normalization when a model is "
            "extracted at a rate.", MULTI_RATE_METHODS, bounds=(1, None, False, False))
    log_dir: str | None = _setting(
        None, "Write per-layer rate and disconnected weights as TensorBoard scalars here at "
              "every epoch end (needs the tensorboard package).", option="tensorboard")
    include_adjacency: bool = _setting(
        True, "Prune the learned adjacencies (attention heads', learned graph offsets) with the "
              "channel kernels, so the rate counts every weight but biases and normalization "
              "(default), or the channel kernels only.",
        flags=("include-adjacency", "kernels-only"))

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Unknown pruning method {self.method!r}; choose one of {METHODS}.")
        self._check_budgets()
        self._check_mac_share()
        if self.method == "mrmp" and not self.budgets:
            if not self.rates:
                raise ValueError("mrmp trains several rates at once: give rates, e.g. "
                                 "rates=(0.9, 0.95, 0.98, 0.99), or budgets.")
            self.rates, self.rate_weights = sort_rates(self.rates, self.rate_weights)
            self.rate = self.rates[-1]
            check_self_distillation(self.self_distillation, len(self.rates),
                                    self.rates_per_step, self.self_distillation_teacher)
        elif self.rates and self.method != "mrmp":
            raise ValueError(f"rates={self.rates} apply to mrmp only; {self.method} prunes to "
                             "one rate (use rate).")
        self.consistent_extraction = self.consistent_extraction and self.multi_rate
        if self.block_density == BY_SIZING:
            self.block_density = BLOCK_DENSITY if self.method == "tcp" and not self.budgets \
                else None
        if self.rate_weights is not None and self.method != "mrmp":
            raise ValueError(f"rate_weights weigh the losses of mrmp's rates; {self.method} "
                             "trains one rate: leave rate_weights None.")
        if self.self_distillation and self.method != "mrmp":
            raise ValueError(f"self_distillation teaches mrmp's sparser rates from its densest; "
                             f"{self.method} trains one rate: leave self_distillation 0.")
        check_method_options(self.method, self.scope, self.supervision, self.block_density,
                             self.supervision_strength)
        check_block_density(self.block_density)
        if not 0.0 < self.rate < 1.0:
            raise ValueError(f"rate must be in (0, 1), got {self.rate}.")
        if self.frequency is not None and self.frequency < 1:
            raise ValueError(f"frequency must be at least 1 step, got {self.frequency}; leave it "
                             f"None for {RAMP_UPDATES} updates over the ramp.")
        check_ramp(self.begin, self.end)

    def _check_budgets(self) -> None:
        self.budgets = tuple(self.budgets)
        if not self.budgets:
            self.start_ratio = None  # only a budget sizes a start: runs record what they did
            return
        if self.start_ratio is not None:
            check_start_ratio(self.start_ratio)
        if min(self.budgets) < 1 or not all(isinstance(b, int) for b in self.budgets):
            raise ValueError(f"budgets must be positive weight counts, got {list(self.budgets)}.")
        if self.rates:
            raise ValueError(f"Give budgets or rates, not both (budgets {list(self.budgets)}, "
                             f"rates {list(self.rates)}).")
        if self.method != "mrmp" and len(self.budgets) > 1:
            raise ValueError(f"{self.method} prunes to one budget; {len(self.budgets)} given "
                             "(several are for mrmp).")

    def _check_mac_share(self) -> None:
        if self.mac_share is None:
            return
        if not 0.0 < self.mac_share < 1.0:
            raise ValueError(f"mac_share must be in (0, 1), got {self.mac_share}.")
        if self.method != "tcp":
            raise ValueError(f"mac_share prunes whole channels with TCP in channel blocks; "
                             f"{self.method} prunes single weights, which leave the MACs: use "
                             f"method 'tcp', or give a rate.")
        if self.budgets:
            raise ValueError(f"Give budgets or mac_share, not both (budgets "
                             f"{list(self.budgets)}, mac_share {self.mac_share}).")
        if self.block_density is None:
            raise ValueError("mac_share needs channel blocks (block_density, 1 by default): "
                             "unstructured TCP keeps nearly every MAC once compacted.")

    @classmethod
    def preset(cls, name: str, **settings: Any) -> PruningConfig:
        """The pruning of a named preset (`PRUNING_PRESETS`) with `settings` over the preset's
        own; those the preset's method does not use are left out, so that one set of settings
        serves every preset.

        Example:
            >>> PruningConfig.preset("tcp_block", rate=0.9).block_density
            1.0
        """
        if name not in PRUNING_PRESETS:
            raise ValueError(f"Unknown pruning preset {name!r}; choose one of "
                             f"{', '.join(PRUNING_PRESETS)}.")
        used = settings_used_by(PRUNING_PRESETS[name]["method"])
        return cls(**{**PRUNING_PRESETS[name],
                      **{key: value for key, value in settings.items() if key in used}})

    def schedule(self, total_steps: int) -> PolynomialDecay:
        """The schedule over `total_steps`, its last turn exactly on its end step."""
        begin = int(self.begin * total_steps)
        span = max(1, int(self.end * total_steps) - begin)
        frequency = max(1, min(self.frequency or span // RAMP_UPDATES, span))
        turns = max(1, span // frequency)
        return PolynomialDecay(0.0, self.rate, begin_step=begin,
                               end_step=begin + turns * frequency, frequency=frequency)

    def callback(self, total_steps: int) -> PruningCallback:
        """The pruning callback of a training of `total_steps` steps, on `schedule`."""
        return pruning_callback(self.method, self.schedule(total_steps), self.scope,
                                self.supervision, self.block_density, self.include_adjacency,
                                self.supervision_strength)

    @property
    def needs_reachability(self) -> bool:
        """Whether the pruning follows input-to-output paths (TCP's selection, consistent
        extraction), which only layers with reachability rules allow."""
        return self.method == "tcp" or self.consistent_extraction

    @property
    def sized(self) -> bool:
        """Whether the rate is still to be derived from a size (`budgets` or `mac_share`) on
        the model the training starts from (`keras_gcnprune.training.resolve_budgets`)."""
        return bool(self.budgets) or self.mac_share is not None

    @property
    def multi_rate(self) -> bool:
        """Whether the method trains a `MultiRateModel` (srmp, mrmp)."""
        return self.method in MULTI_RATE_METHODS

    def trained_rates(self) -> tuple[float, ...]:
        """The rates the run trains: `rates` for mrmp, `(rate,)` otherwise."""
        return self.rates or (self.rate,)

    def trainer(self, network: keras.Model, seed: int, fresh: bool = True) -> keras.Model:
        """The model `fit` trains: a `MultiRateModel` around `network` (srmp, mrmp), or it.

        A `fresh` (newly initialized) network's kernels are first drawn from the prior
        (`align_with_prior`), so training starts aligned; a trained one is left to the
        alignment loss.
        """
        if not self.multi_rate:
            return network
        if fresh:
            align_with_prior(network, self.prior, self.include_adjacency)
        return MultiRateModel(network, self.trained_rates(), self.prior, self.alignment,
                              self.alignment_scope, rates_per_step=self.rates_per_step,
                              rate_weights=self.rate_weights,
                              self_distillation=self.self_distillation,
                              self_distillation_teacher=self.self_distillation_teacher,
                              seed=seed,
                              include_adjacency=self.include_adjacency)


# The pruning a benchmark compares, by name: a method and the settings that make it that
# preset (`tcp` and its ablations are the paper's unstructured TCP, `tcp_block` the default
# to a rate).
PRUNING_PRESETS: dict[str, dict[str, Any]] = {
    **{method: {"method": method} for method in METHODS},
    "tcp": {"method": "tcp", "block_density": None},  # the paper's, unstructured
    **{f"tcp_{supervision}": {"method": "tcp", "supervision": supervision,
                              "block_density": None}
       for supervision in SUPERVISION if supervision != "both"},
    "tcp_block": {"method": "tcp", "block_density": BLOCK_DENSITY},
}


def settings_used_by(method: str) -> set[str]:
    """The names of the `PruningConfig` settings that `method` uses (each field's
    `metadata["methods"]`; None: every method)."""
    return {setting.name for setting in fields(PruningConfig)
            if setting.metadata["methods"] is None or method in setting.metadata["methods"]}


def pruning_settings(*names: str) -> list[Field]:
    """The fields of `PruningConfig` named (all where none is), in declaration order: the
    settings a command line exposes, each with its description in `metadata`."""
    unknown = set(names) - {f.name for f in fields(PruningConfig)}
    if unknown:
        raise ValueError(f"PruningConfig has no settings {sorted(unknown)}.")
    return [f for f in fields(PruningConfig) if not names or f.name in names]
