"""Accuracy against pruning rate: every (method, rate, fold or split, seed), resumable.

Each training is a normal run directory under `OUT/runs/<method>[_<rate>]/<protocol>/seed<k>`
(see `keras_gcnprune.training.train`); its benchmark records are written beside it
(`records.json`) the moment it finishes, and `OUT/results.json`, `OUT/results.md` and the plots
are rewritten after every training, so an interrupted benchmark loses at most the training in
progress (which itself resumes from its last epoch) and rerunning the command continues it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from keras_gcnprune import models
from keras_gcnprune.bench.executors import SequentialExecutor
from keras_gcnprune.bench.progress import Progress
from keras_gcnprune.bench.results import (
    RESULTS_FILE,
    accuracy_summary,
    accuracy_tables,
    load_results,
    mrmp_realized_rates,
    realized_rates_table,
    save_results,
    shape_size,
    small_dense_shapes,
    write_json,
)
from keras_gcnprune.data import Preprocessing, SkeletonDataset, load_dataset, protocol_names
from keras_gcnprune.outputs import OutputFolder
from keras_gcnprune.pruning import BLOCK_DENSITY, PRUNING_PRESETS, PruningConfig
from keras_gcnprune.pruning.config import check_start_ratio, settings_used_by
from keras_gcnprune.pruning.multirate import MAX_RATES, sort_rates
from keras_gcnprune.reports import model_costs
from keras_gcnprune.training import (
    DistillationConfig,
    RunDirectory,
    TrainConfig,
    block_rate_for_budget,
    budget_at_rate,
    budget_rates,
    build_model,
    extract_run,
    load_run,
    pruning_start,
    starting_model,
    starts_smaller,
    train,
    width_matched_options,
)
from keras_gcnprune.training.directory import settings_difference
from keras_gcnprune.training.run import (
    DEFAULT_STREAMS,
    compacted_metrics,
    only_extraction_differs,
    pruning_report,
    rate_summary,
)
from keras_gcnprune.training.sizing import weights_of

RECORDS_FILE = "records.json"
UNPRUNED_METHODS = ("dense", "small_dense")
# What a benchmark compares: the unpruned models and the named pruning presets.
BENCH_METHODS = (*UNPRUNED_METHODS, *PRUNING_PRESETS)
BASE_METHODS = (*UNPRUNED_METHODS, "magnitude", "tcp", "srmp", "mrmp")
# The settings of `PruningConfig` a benchmark sets for every pruning preset that uses them;
# block_density is tcp_block's only (the other TCP presets are unstructured).
PRUNING_SETTINGS = ("rates_per_step", "rate_weights", "self_distillation",
                    "self_distillation_teacher", "consistent_extraction",
                    "supervision_strength")


def presets_using(setting: str) -> tuple[str, ...]:
    """The pruning presets whose method uses a `PruningConfig` setting."""
    return tuple(name for name, preset in PRUNING_PRESETS.items()
                 if setting in settings_used_by(preset["method"]))


TCP_METHODS = presets_using("supervision_strength")
# Settings that only some methods' trainings read, with those methods.
METHOD_SETTINGS = {**{setting: presets_using(setting) for setting in PRUNING_SETTINGS},
                   "block_density": ("tcp_block",),
                   "block_budget": ("tcp_block", "small_dense")}
BLOCK_BUDGETS = ("compacted", "nonzero", "macs")  # what tcp_block's rates budget
# A record's compacted sizes, and what they are for a model that is not pruned.
COMPACTED_SIZES = {"compacted_parameters": "parameters", "compacted_macs": "macs",
                   "compacted_nonzero_parameters": "nonzero_parameters"}


@dataclass
class AccuracyBench:
    """What an accuracy benchmark trains.

    Args:
        dataset: Dataset spec (see `keras_gcnprune.data.load_dataset`).
        protocols: Folds or splits to run (empty: every one of the dataset's protocols).
        model: Model name for `keras_gcnprune.models.build`.
        model_options: Options of that model (for example wider widths, to prune a large
            model down to the budgets of a small one); small_dense scales them.
        methods: Any of `dense`, `small_dense` (the baseline every pruning result is
            measured against: the same family, widths scaled so that its weights match what
            a model pruned at each rate keeps, `keras_gcnprune.training.budget_at_rate`,
            trained from scratch for the same epochs; every shape of
            `keras_gcnprune.models.width_variants` as well as all widths scaled alike is
            trained, and the summary keeps the one of the best validation accuracy),
            `magnitude`, `tcp`, `srmp`, `mrmp`,
            the TCP ablations `tcp_<supervision>` (`tcp_none`: the consistent selection
            without supervision), and `tcp_block` (TCP inside channel blocks filled to
            `block_density`, which compaction shrinks).
        rates: Pruning rates; every method but dense and mrmp trains once per rate, mrmp
            trains once for all of them.
        seeds: Seeds 0..seeds-1 of every (method, rate, protocol).
        epochs: Training epochs of every run.
        frames: Frames per sequence.
        streams: Input streams of every model (`keras_gcnprune.data.Preprocessing.streams`).
        refit: Every run trains its final model again on the whole training split after its
            selection run (`TrainConfig.refit`); the validation accuracy that chooses is the
            selection run's, the test accuracy the final model's.
        unseen: Rates never trained that are extracted from every mrmp training, to check the
            realized rate of untrained rates (when the training finishes: rates added later
            need a fresh --out).
        rates_per_step: Rates evaluated per mrmp training step (None: all).
        rate_weights: Weights of mrmp's per-rate losses, one per rate of `rates` in its order
            (None: `keras_gcnprune.pruning.MultiRateModel`'s default).
        self_distillation: Weight of mrmp's self-distillation, its sparser rates learning
            from its densest (`PruningConfig.self_distillation`); 0: none.
        self_distillation_teacher: `"densest"` or `"next"` denser rate
            (`PruningConfig.self_distillation_teacher`).
        consistent_extraction: srmp's and mrmp's models keep the best-ranked topologically
            consistent subnetwork of each budget (`PruningConfig.consistent_extraction`);
            False: the largest-ranked weights, as the band-stop methods were published.
        distill: Every method but dense distils from the dense run of its protocol and seed
            (`keras_gcnprune.training.DistillationConfig` defaults), small_dense included, so
            that every compared model had the same teacher and the same epochs; needs dense
            among the methods.
        from_dense: Every pruning method starts from the trained dense run of its protocol
            and seed instead of a new model. Training stays equal: small_dense then trains
            twice the epochs (the dense run's and the pruning's), unless it distils from that
            dense run too (`distill`).
        start_ratio: Every pruning method starts from the model of the family whose weights
            are about `start_ratio` times each rate's budget (the nonzero weights of the
            benchmark's model pruned at that rate, `budget_at_rate`), widths scaled as for
            small_dense, and is pruned to that same budget; mrmp starts from `start_ratio`
            times the largest budget and trains every budget on that model (its records keep
            the benchmark's rates as names). As with `PruningConfig.start_ratio`, a start is
            never wider: where the benchmark's model is not larger than that, it is pruned
            itself. None: from the benchmark's model.
            A budget far below the starting model's weights leaves a few weights scattered over
            many channels, whose biases and normalization then take most of it: a start a few
            times the budget keeps a model that can learn (small_dense is a start of 1, not
            pruned).
        supervision_strength: Scale of the gradient TCP's supervision gives the latent
            weights, for tcp, its ablations and tcp_block (`PruningConfig.supervision_strength`).
        block_density: The fraction of its channel block's weights that `tcp_block` keeps
            (1.0: whole channels, so that the compacted model keeps few zeros; lower: more
            channels kept, each sparser).
        block_budget: What `tcp_block`'s rates budget: `"compacted"` (default), the weights
            of its compacted model, which then has about the nonzero weights the other methods
            keep at that rate (`keras_gcnprune.training.block_rate_for_budget`; its realized
            rate is another); `"nonzero"`, its nonzero weights like the other methods, which
            leaves the compacted model smaller than the budget (dead channels' biases and
            normalization go); `"macs"`, the MACs per sequence of its compacted model:
            `1 - rate` of the benchmark model's, and small_dense's widths are then matched to
            those MACs rather than to weights, so that the two meet at equal speed.
        ramp: `(begin, end)` of every pruning method's ramp, as fractions of the training
            (`PruningConfig.begin`, `PruningConfig.end`): the rate is reached at `end` and
            the rest of the training fine-tunes the final masks.

    Example:
        >>> bench = AccuracyBench(dataset="synthetic", methods=("dense", "tcp"),
        ...                       rates=(0.9,), seeds=1, epochs=2)
        >>> [t.name for t in bench.trainings(("cross_subject",))]
        ['dense', 'tcp_0.9']
    """

    dataset: str = "sbu"
    protocols: tuple[str, ...] = ()
    model: str = TrainConfig.model
    model_options: dict = field(default_factory=dict)
    methods: tuple[str, ...] = BASE_METHODS
    rates: tuple[float, ...] = (0.5, 0.7, 0.9, 0.95, 0.98, 0.99, 0.995)
    seeds: int = 3
    epochs: int = TrainConfig.epochs
    frames: int = Preprocessing.frames
    streams: tuple[str, ...] = DEFAULT_STREAMS
    refit: bool = TrainConfig.refit
    unseen: tuple[float, ...] = ()
    rates_per_step: int | None = PruningConfig.rates_per_step
    rate_weights: tuple[float, ...] | None = PruningConfig.rate_weights
    self_distillation: float = PruningConfig.self_distillation
    self_distillation_teacher: str = PruningConfig.self_distillation_teacher
    consistent_extraction: bool = PruningConfig.consistent_extraction
    distill: bool = False
    from_dense: bool = False
    start_ratio: float | None = None
    supervision_strength: float = PruningConfig.supervision_strength
    block_density: float = BLOCK_DENSITY
    block_budget: str = "compacted"
    ramp: tuple[float, float] = (PruningConfig.begin, PruningConfig.end)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in BENCH_METHODS]
        if unknown or not self.methods:
            raise ValueError(f"Unknown methods {unknown or list(self.methods)}; choose from "
                             f"{', '.join(BENCH_METHODS)}.")
        for name, rates in (("rates", self.rates), ("unseen", self.unseen)):
            if not all(0.0 < r < 1.0 for r in rates):
                raise ValueError(f"{name} must be in (0, 1), got {list(rates)}.")
            if len(rates) > MAX_RATES:
                raise ValueError(f"{len(rates)} {name} given; at most {MAX_RATES} are accepted.")
        if not self.rates and set(self.methods) - {"dense"}:
            raise ValueError("Pruning methods and small_dense need rates, e.g. "
                             "rates=(0.9, 0.99).")
        for option in ("distill", "from_dense"):
            if getattr(self, option) and "dense" not in self.methods:
                raise ValueError(f"{option}=True uses the dense runs: add dense to methods.")
        if self.start_ratio is not None:
            self._check_start_ratio()
        if self.block_budget not in BLOCK_BUDGETS:
            raise ValueError(f"block_budget must be one of {', '.join(BLOCK_BUDGETS)}, got "
                             f"{self.block_budget!r}.")
        self.ramp = tuple(self.ramp)
        self._check_settings_have_methods()
        if self.rate_weights is None:
            self.rates = tuple(sorted(set(self.rates)))
        else:
            self.rates, self.rate_weights = sort_rates(self.rates, self.rate_weights)
        # found once: budgets by rate, small_dense options by (rate, variant), starts by
        # rates, tcp_block's rates by (budget, model options)
        self._budgets: dict[float, int] = {}
        self._macs: int | None = None  # the benchmark model's
        self._block_rates: dict[tuple, float] = {}
        self._small_dense: dict[tuple[float, str], dict] = {}
        self._starts: dict[tuple[float, ...], tuple[dict, tuple[float, ...]]] = {}
        if self.seeds < 1 or self.epochs < 1:
            raise ValueError(f"seeds and epochs must be at least 1, got seeds={self.seeds}, "
                             f"epochs={self.epochs}.")

    def _check_settings_have_methods(self) -> None:
        """Refuses a setting off its default that no method of the benchmark uses (it would
        be ignored), then checks every pruning setting once, in each preset's
        `PruningConfig`."""
        for setting, methods in METHOD_SETTINGS.items():
            default = AccuracyBench.__dataclass_fields__[setting].default
            if getattr(self, setting) != default and not set(methods) & set(self.methods):
                them = "it" if len(methods) == 1 else "one of them"
                raise ValueError(f"{setting}={getattr(self, setting)!r} applies to "
                                 f"{', '.join(methods)} only: add {them} to methods, or "
                                 f"leave it {default!r}.")
        for method in set(self.methods) - set(UNPRUNED_METHODS):
            self.pruning(Training(method, self.rates[0], "", 0, self.rates))

    def _check_start_ratio(self) -> None:
        check_start_ratio(self.start_ratio)
        if self.unseen:
            raise ValueError(f"unseen rates {list(self.unseen)} name the benchmark model's "
                             "budgets, and start_ratio trains mrmp on a model of other widths: "
                             "give them as rates instead.")
        if self.from_dense:
            raise ValueError("start_ratio and from_dense exclude each other: the dense run has "
                             "the benchmark's width, not the starting widths.")

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing of every run."""
        return Preprocessing(frames=self.frames, streams=self.streams)

    def description(self) -> str:
        """What the benchmark trains, in one phrase (its command's help shows the presets').

        Example:
            >>> AccuracyBench(dataset="msr", methods=("dense", "tcp"), rates=(0.9,), seeds=1,
            ...               epochs=40).description()
            'msr, 1 protocol(s), 1 seed(s), 40 epochs, rates 0.9, methods dense,tcp (2 trainings)'
        """
        protocols = self.protocols or protocol_names(self.dataset)
        return (f"{self.dataset}, {len(protocols)} protocol(s), {self.seeds} seed(s), "
                f"{self.epochs} epochs, rates {','.join(f'{r:g}' for r in self.rates)}, "
                f"methods {','.join(self.methods)} ({len(self.trainings(protocols))} trainings)")

    def trainings(self, protocols: Sequence[str]) -> list[Training]:
        """Every training the benchmark needs: seed 0 on every fold first, then the next seed,
        so that a benchmark stopped early has covered all folds."""
        plan = []
        # dense first: with distill, it is every other method's teacher
        methods = sorted(self.methods, key=lambda m: m != "dense")
        for seed in range(self.seeds):
            for protocol in protocols:
                for method in methods:
                    single = method in ("dense", "mrmp")
                    # small_dense: every shape of the family per rate; validation picks one
                    variants = ["", *models.width_variants(self.model)] \
                        if method == "small_dense" else [""]
                    for rate in [None] if single else self.rates:
                        plan += [Training(method, rate, protocol, seed,
                                          self.rates if method == "mrmp" else (), variant)
                                 for variant in variants]
        return plan

    def pruning(self, training: Training) -> PruningConfig | None:
        """The pruning of a training (None for dense and small_dense)."""
        if training.method in UNPRUNED_METHODS:
            return None
        settings = {setting: getattr(self, setting) for setting in PRUNING_SETTINGS}
        if training.method == "tcp_block":
            settings["block_density"] = self.block_density
        rate = {"rates": training.rates} if training.method == "mrmp" else \
            {"rate": training.rate}
        begin, end = self.ramp
        return PruningConfig.preset(training.method, **settings, **rate, begin=begin, end=end)

    def train_config(self, training: Training, dataset: SkeletonDataset, out_dir: Path
                     ) -> TrainConfig:
        """The complete configuration `keras_gcnprune.training.train` runs for a training
        (`dataset`, loaded: the small dense models' widths depend on its shapes; `out_dir`:
        where the benchmark's runs, teachers included, are)."""
        dense = Training("dense", None, training.protocol, training.seed).run_dir(out_dir)
        teacher = DistillationConfig(str(dense)) if self.distill and \
            training.method != "dense" else None
        pruning = self.pruning(training)
        config = TrainConfig(dataset=self.dataset, protocol=training.protocol, model=self.model,
                             model_options=dict(self.model_options), epochs=self.epochs,
                             preprocessing=self.preprocessing, seed=training.seed,
                             on_error="skip", pruning=pruning, refit=self.refit,
                             distillation=teacher,
                             initial_model=str(RunDirectory(dense).model_file)
                             if self.from_dense and pruning else None)
        # the benchmark model's budget, found before a start ratio changes the widths
        compacted_budget = self._matched_budget(config, dataset, training.rate) \
            if training.method == "tcp_block" and self.block_budget != "nonzero" else None
        if pruning is not None and self.start_ratio is not None:
            mrmp = training.method == "mrmp"
            options, rates = self._start(config, dataset,
                                         training.rates if mrmp else (training.rate,))
            pruning = replace(pruning, rates=rates) if mrmp else replace(pruning, rate=rates[0])
            config = replace(config, model_options=options, pruning=pruning)
        if compacted_budget is not None:
            rate = self._block_rate(config, dataset, compacted_budget)
            return replace(config, pruning=replace(config.pruning, rate=rate))
        if training.method != "small_dense":
            return config
        if self.from_dense and not self.distill:
            config = replace(config, epochs=2 * self.epochs)
        key = (training.rate, training.variant)
        if key not in self._small_dense:
            shape = models.width_variants(self.model).get(training.variant, {})
            self._small_dense[key] = width_matched_options(
                replace(config, model_options={**self.model_options, **shape}), dataset,
                self._matched_budget(config, dataset, training.rate), fixed=tuple(shape),
                cost=self.size_cost)
        return replace(config, model_options=self._small_dense[key])

    @property
    def size_cost(self) -> str:
        """What small_dense and tcp_block are sized by (a key of
        `keras_gcnprune.training.sizing.COSTS`): MACs with `block_budget="macs"`, else
        weights."""
        return "macs" if self.block_budget == "macs" else "parameters"

    def _matched_budget(self, config: TrainConfig, dataset: SkeletonDataset, rate: float
                        ) -> int:
        """The size small_dense and tcp_block have at `rate`: the nonzero weights of the
        benchmark's model pruned at `rate`, or with `block_budget="macs"`, `1 - rate` of its
        MACs."""
        if self.size_cost == "parameters":
            return self._budget(config, dataset, rate)
        if self._macs is None:
            self._macs = model_costs(build_model(config, dataset))["macs"]
        return round((1.0 - rate) * self._macs)

    def _budget(self, config: TrainConfig, dataset: SkeletonDataset, rate: float) -> int:
        """The nonzero weights of the benchmark's model pruned at `rate` (`config`: a training
        of the benchmark's model)."""
        if rate not in self._budgets:
            self._budgets[rate] = budget_at_rate(build_model(config, dataset), rate)
        return self._budgets[rate]

    def _block_rate(self, config: TrainConfig, dataset: SkeletonDataset, budget: int) -> float:
        """The rate at which the model `config` starts from (with `from_dense`, the trained
        dense run, as `prune --from` does), pruned in channel blocks, compacts to about
        `budget` weights, or with `block_budget="macs"`, to at most `budget` MACs."""
        key = (budget, json.dumps(config.model_options, sort_keys=True), config.initial_model)
        if key not in self._block_rates:
            # a new model is built under seed 0 for every seed: resuming compares the rate
            model = starting_model(replace(config, seed=0), dataset)
            self._block_rates[key] = block_rate_for_budget(
                model, budget, self.block_density, cost=self.size_cost,
                at_most=self.size_cost == "macs")
        return self._block_rates[key]

    def _start(self, config: TrainConfig, dataset: SkeletonDataset, rates: tuple[float, ...]
               ) -> tuple[dict, tuple[float, ...]]:
        """`(model options, rates)` of the model pruning starts from to reach `rates`'
        budgets: the benchmark's own where it is not larger than the start ratio times the
        largest budget (`keras_gcnprune.training.starts_smaller`)."""
        if rates not in self._starts:
            budgets = [self._budget(config, dataset, rate) for rate in rates]
            if starts_smaller(weights_of(config, dataset), budgets, self.start_ratio):
                self._starts[rates] = pruning_start(config, dataset, budgets, self.start_ratio)
            else:
                self._starts[rates] = dict(config.model_options), rates
        return self._starts[rates]


def rates_for_budgets(bench: AccuracyBench, budgets: Sequence[int], dataset: SkeletonDataset
                      ) -> tuple[float, ...]:
    """The pruning rates at which the benchmark's model (its family and `model_options`) keeps
    each of `budgets` nonzero weights, biases and normalization included, so that models of
    other widths are pruned to the same sizes (`keras_gcnprune.training.rate_for_budget`).

    Args:
        bench: The benchmark (its model, options and frames are used).
        budgets: Nonzero weight counts.
        dataset: The loaded dataset (layout, classes, channels).

    Returns:
        One rate per budget, rounded to 6 decimals (a rounding that keeps every budget exact
        below a million prunable weights).

    Raises:
        ValueError: a budget the model cannot reach, with the reachable range.

    Example:
        >>> from keras_gcnprune.data import load_dataset
        >>> bench = AccuracyBench(dataset="synthetic", model="attention_gcn", streams=("joint",),
        ...                       model_options={"heads": 4})
        >>> rates_for_budgets(bench, [1500], load_dataset("synthetic"))
        (0.932663,)
    """
    config = TrainConfig(dataset=bench.dataset, model=bench.model,
                         model_options=dict(bench.model_options),
                         preprocessing=bench.preprocessing)
    return tuple(round(rate, 6) for rate in budget_rates(build_model(config, dataset), budgets))


@dataclass(frozen=True)
class Training:
    """One training of the benchmark (mrmp: one for all rates; dense: rate None)."""

    method: str
    rate: float | None
    protocol: str
    seed: int
    rates: tuple[float, ...] = ()
    variant: str = ""  # small_dense: the shape (see `keras_gcnprune.models.width_variants`)

    @property
    def name(self) -> str:
        """`dense`, `<method>_<rate>[_<variant>]`, or `mrmp_<rate>_<rate>...` (one training,
        its rates)."""
        if self.method == "mrmp":
            return "_".join(["mrmp", *(f"{r:g}" for r in self.rates)])
        name = self.method if self.rate is None else f"{self.method}_{self.rate:g}"
        return f"{name}_{self.variant}" if self.variant else name

    def run_dir(self, out_dir: Path) -> Path:
        return out_dir / "runs" / self.name / self.protocol / f"seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.name} {self.protocol} seed{self.seed}"


PRESETS = {
    "quick": AccuracyBench(dataset="sbu", rates=(0.9, 0.98, 0.995), seeds=1, epochs=40),
    "full": AccuracyBench(),
}


def _record(training: Training, rate: float, metrics: dict, run_metrics: dict) -> dict:
    return {
        "method": training.method,
        "rate": rate,
        "variant": training.variant,
        "protocol": training.protocol,
        "seed": training.seed,
        **{key: metrics[key] for key in ("test_accuracy", "realized_rate",
                                         "disconnected_fraction", "kept_weights",
                                         "dead_channels")},
        # The model's size: every weight, and those a pruned one keeps (biases and
        # normalization included); what methods are compared at.
        "parameters": metrics["parameters"],
        "nonzero_parameters": metrics["nonzero_parameters"],
        # Narrowed to its live channels, as its TFLite file is (None: a model compaction
        # does not support, or MRMP rates trained before compacted sizes were measured).
        **{key: metrics.get(key, metrics[fallback] if training.method in UNPRUNED_METHODS
                            else None) for key, fallback in COMPACTED_SIZES.items()},
        # What choices are made on (see `TrainConfig.validation`); None without it.
        "validation_accuracy": metrics.get("validation_accuracy"),
        "train_time_s": run_metrics["train_time_s"],
        "wall_time_s": run_metrics["wall_time_s"],
        "device": run_metrics["device"],
    }


def _dense_record(training: Training, run_dir: Path, metrics: dict) -> dict:
    """dense at rate 0; small_dense at the rate whose budget it matches."""
    model, _ = load_run(run_dir)
    summary = rate_summary(pruning_report(model))
    return _record(training, training.rate or 0.0, {**metrics, **summary}, metrics)


def _mrmp_records(training: Training, run_dir: Path, metrics: dict,
                  unseen: Sequence[float]) -> list[dict]:
    # from a start ratio the trained rates are the start's; records keep the benchmark's
    trained = sorted(metrics["rates"], key=float)
    names = dict(zip(trained, training.rates))
    records = [_record(training, names[rate], entry, metrics)
               for rate, entry in metrics["rates"].items()]
    # Its own folder, extracted again when the run's extraction settings change.
    extracted = extract_run(run_dir, list(unseen), run_dir / "extracted", on_error="skip",
                            overwrite=True) if unseen else []
    for entry in extracted:
        records.append({**_record(training, entry["rate"], entry, metrics), "unseen": True})
    return records


def records_of(bench: AccuracyBench, training: Training, run_dir: Path) -> list[dict]:
    """The benchmark records of a finished training (mrmp: one per rate, unseen included)."""
    metrics = RunDirectory(run_dir).read_metrics()
    if training.method in UNPRUNED_METHODS:
        records = [_dense_record(training, run_dir, metrics)]
    elif training.method == "mrmp":
        records = _mrmp_records(training, run_dir, metrics, bench.unseen)
    else:
        if not set(COMPACTED_SIZES) <= set(metrics):  # a run from before they were measured
            metrics = {**compacted_metrics(load_run(run_dir)[0]), **metrics}
        records = [_record(training, training.rate, metrics, metrics)]
    return [{**r, "run": str(run_dir)} for r in records]


def finished_records(bench: AccuracyBench, training: Training, out_dir: Path,
                     dataset: SkeletonDataset) -> list | None:
    """The records of a training already done (None: it still has to train, or, trained with
    other extraction settings, to be extracted again by `train`), naming its run where it is
    now (a benchmark folder may have moved since it trained)."""
    run_dir = training.run_dir(out_dir)
    run = RunDirectory(run_dir)
    records_file = run_dir / RECORDS_FILE
    if run.run_file.exists():
        config = bench.train_config(training, dataset, out_dir)
        if only_extraction_differs(run, config):
            with run.output.locked():
                run.output.remove(RECORDS_FILE)
            return None
        run.check_same_settings(config)
    if records_file.exists():
        records = json.loads(records_file.read_text())["records"]
        if all(key in r for r in records for key in COMPACTED_SIZES):
            return [{**r, "run": str(run_dir)} for r in records]
    if not run.finished():
        return None
    records = records_of(bench, training, run_dir)
    write_json(records_file, {"records": records})
    return records


@dataclass
class AccuracyResults:
    """Everything `run_accuracy` measured: its records, summary and the files it wrote."""

    bench: AccuracyBench
    records: list[dict]
    summary: list[dict]
    planned: int = 0
    finished: int = 0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def covered(self) -> AccuracyBench:
        """The benchmark with the methods (in `METHODS`' order, whichever command added them)
        and rates of every record, earlier runs kept in the results (see `earlier_records`)
        included."""
        present = {*self.bench.methods, *(r["method"] for r in self.summary)}
        methods = tuple(method for method in BENCH_METHODS if method in present)
        rates = tuple(sorted({*self.bench.rates,
                              *(r["rate"] for r in self.summary if r["method"] != "dense")}))
        return replace(self.bench, methods=methods, rates=rates)

    @property
    def table(self) -> str:
        covered = self.covered
        table = accuracy_tables(self.summary, list(covered.methods), list(covered.rates),
                                small_dense_shapes(self.records))
        realized = realized_rates_table(mrmp_realized_rates(self.records))
        return table + ("\n" + realized if realized else "")


def run_accuracy(bench: AccuracyBench, out_dir: str | Path, command: str = "",
                 progress: Progress | None = None, plots: bool = True,
                 on_training: Callable[[Training], None] | None = None,
                 executor=None) -> AccuracyResults:
    """Runs (or continues) an accuracy benchmark and writes its results.

    Args:
        bench: What to train.
        out_dir: Output folder: `runs/`, `results.json` (every record, the summary, the
            benchmark's settings, command, machine and versions), `results.md` and PNG plots.
        command: The command line to record in the results.
        progress: Progress line (default: one on standard error).
        plots: Draw the PNG plots (`keras_gcnprune.bench.plots.plot_accuracy`).
        on_training: Called before each training is handed to a worker (tests use it to
            interrupt).
        executor: Where the trainings run (`keras_gcnprune.bench.executors.make_executor`:
            local worker processes or Ray); None: one after the other in this process. Every
            executor writes the same run directories and results.

    Returns:
        The `AccuracyResults`.

    Raises:
        TrainingsFailed: some trainings failed (each one's traceback is in
            `OUT/failures.json`); the others finished and are in the results, and a rerun
            retries only the failed ones.

    Example:
        >>> bench = AccuracyBench(dataset="synthetic", methods=("dense", "magnitude"),
        ...                       rates=(0.9,), seeds=1, epochs=1)
        >>> results = run_accuracy(bench, "runs/bench")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    with OutputFolder(out_dir).locked():
        return _run_accuracy(bench, out_dir, command, progress, plots, on_training,
                             executor or SequentialExecutor())


# Settings that choose which runs a benchmark covers; the others decide how each run trains.
COVERAGE_SETTINGS = ("methods", "rates", "protocols", "seeds")


def saved_settings(results: dict) -> dict:
    """Every setting of a saved accuracy benchmark; one added since it was saved has its
    default, which must train as the benchmark did before the setting existed (otherwise
    `benchmarks/migrate_runs.py` records the old behaviour in the kept results)."""
    return {**asdict(AccuracyBench()), **results["settings"]}


def earlier_records(out_dir: Path, bench: AccuracyBench, plan: list[Training]) -> list[dict]:
    """The records of an earlier benchmark in `out_dir` for runs outside `plan`, so that a
    rerun with fewer methods, rates, protocols or seeds keeps them in its results.

    Raises:
        ValueError: the earlier benchmark trained its runs with other settings (epochs,
            frames, ...), which one table must not mix.
    """
    if not (out_dir / RESULTS_FILE).exists():
        return []
    earlier = load_results(out_dir)
    saved = saved_settings(earlier)
    # settings that decide one method's models matter only where it has trained
    ignored = {*COVERAGE_SETTINGS, *(setting for setting, methods in METHOD_SETTINGS.items()
                                     if not set(methods) & set(saved["methods"]))}
    saved = {k: v for k, v in saved.items() if k not in ignored}
    wanted = {k: v for k, v in asdict(bench).items() if k not in ignored}
    details = settings_difference(saved, wanted)
    if details:
        raise ValueError(f"{out_dir / RESULTS_FILE} holds a benchmark with other settings "
                         f"({details}); use another output folder (--out), or the same settings.")
    # By the run's own folders (name, protocol, seed): `out_dir` may be spelled another way.
    planned = {training.run_dir(out_dir).parts[-3:] for training in plan}
    return [r for r in earlier.get("records", []) if Path(r["run"]).parts[-3:] not in planned]


def train_one(bench: AccuracyBench, out_dir: str, dataset: SkeletonDataset,
              training: Training) -> None:
    """Trains one training of the benchmark into its run directory, which `train` holds for
    the time it trains, so that two workers never train the same run."""
    run_dir = training.run_dir(Path(out_dir))
    train(bench.train_config(training, dataset, Path(out_dir)), run_dir, dataset=dataset,
          verbose=0)


def waves(bench: AccuracyBench, trainings: list[Training]) -> list[list[Training]]:
    """The trainings in the order their inputs allow: with `distill` or `from_dense`, the
    dense runs first (every other method uses them), then the rest."""
    if not (bench.distill or bench.from_dense):
        return [trainings]
    dense = [t for t in trainings if t.method == "dense"]
    return [wave for wave in (dense, [t for t in trainings if t.method != "dense"]) if wave]


class TrainingsFailed(RuntimeError):
    """Some trainings of a benchmark failed; the others finished and are in the results."""


def _run_accuracy(bench: AccuracyBench, out_dir: Path, command: str, progress: Progress | None,
                  plots: bool, on_training: Callable[[Training], None] | None,
                  executor) -> AccuracyResults:
    dataset = load_dataset(bench.dataset, on_error="skip")
    protocols = bench.protocols or protocol_names(dataset.name)
    plan = bench.trainings(protocols)
    progress = progress or Progress(len(plan))
    bench = replace(bench, protocols=tuple(protocols))
    earlier = earlier_records(out_dir, bench, plan)
    results = AccuracyResults(bench, list(earlier), [], planned=len(plan))
    found: dict[Training, list[dict]] = {}
    for training in plan:
        records = finished_records(bench, training, out_dir, dataset)
        if records is not None:
            found[training] = records
            progress.skip(training.label)

    def collect() -> None:  # records in plan order, whatever order the trainings end in
        results.records = earlier + [r for t in plan if t in found for r in found[t]]
        results.finished = len(found)

    def started(training: Training) -> None:
        if on_training is not None:
            on_training(training)
        progress.start(training.label)

    collect()
    failures = {}
    work = functools.partial(train_one, bench, str(out_dir))
    setup = functools.partial(load_dataset, bench.dataset, on_error="skip")
    for wave in waves(bench, [t for t in plan if t not in found]):
        for training, failure in executor.run(work, wave, setup, on_start=started,
                                              state=dataset):
            if failure is None:
                found[training] = finished_records(bench, training, out_dir, dataset)
                progress.done(training.label)
                collect()
                _write_outputs(results, out_dir, command, plots)
            else:
                failures[training.label] = {"run": str(training.run_dir(out_dir)),
                                            "traceback": failure}
                progress.fail(training.label)
    _write_outputs(results, out_dir, command, plots)
    _report_failures(failures, out_dir)
    return results


FAILURES_FILE = "failures.json"


def _report_failures(failures: dict[str, dict], out_dir: Path) -> None:
    """Writes (or, when none failed, removes) `failures.json` and raises `TrainingsFailed`."""
    path = out_dir / FAILURES_FILE
    if not failures:
        OutputFolder(out_dir).remove(FAILURES_FILE)
        return
    write_json(path, failures)
    last_line = next(iter(failures.values()))["traceback"].strip().splitlines()[-1]
    raise TrainingsFailed(
        f"{len(failures)} training(s) failed ({', '.join(failures)}; first: {last_line}); the "
        f"others finished and are in the results. Tracebacks: {path}. Run the same command "
        "again to retry only the failed ones.")


def _write_outputs(results: AccuracyResults, out_dir: Path, command: str, plots: bool) -> None:
    results.summary = accuracy_summary(results.records, shape_size(results.bench.block_budget))
    results.files.update(save_results(
        out_dir, "accuracy", command, asdict(results.covered), results.table,
        trainings={"planned": results.planned, "finished": results.finished},
        summary=results.summary,
        mrmp_realized_rates=mrmp_realized_rates(results.records),
        records=results.records))
    if plots and results.summary:
        from keras_gcnprune.bench.plots import plot_accuracy

        label = f"{results.bench.dataset} ({results.bench.model})"
        results.files.update(plot_accuracy(results.summary, out_dir, label,
                                           small_dense_shapes(results.records)))

