"""Training runs: `model.fit` on a dataset spec, with the run's artifacts written to disk."""

from keras_gcnprune.pruning import PruningConfig  # a training's pruning; kept here for imports
from keras_gcnprune.training.callbacks import EpochCounter, TrainingDivergedError
from keras_gcnprune.training.directory import (
    RunConflictError,
    RunDirectory,
    load_model_file,
    load_run,
)
from keras_gcnprune.training.distillation import (
    DistillationConfig,
    DistillationLoss,
    LabelLoss,
)
from keras_gcnprune.training.ensemble import ensemble_runs
from keras_gcnprune.training.extraction import extract_run
from keras_gcnprune.training.run import (
    RunData,
    TrainConfig,
    build_model,
    check_data_fits,
    evaluate,
    evaluate_arrays,
    prepare_data,
    run_data,
    train,
)
from keras_gcnprune.training.run_info import RunInfo
from keras_gcnprune.training.sizing import (
    block_rate_for_budget,
    budget_at_rate,
    budget_rates,
    pruning_start,
    rate_for_budget,
    resolve_budgets,
    starting_model,
    starts_smaller,
    width_matched_options,
)

__all__ = [
    "DistillationConfig",
    "DistillationLoss",
    "LabelLoss",
    "EpochCounter",
    "PruningConfig",
    "RunConflictError",
    "RunData",
    "RunDirectory",
    "TrainConfig",
    "TrainingDivergedError",
    "budget_at_rate",
    "budget_rates",
    "rate_for_budget",
    "block_rate_for_budget",
    "build_model",
    "check_data_fits",
    "ensemble_runs",
    "evaluate",
    "evaluate_arrays",
    "extract_run",
    "load_model_file",
    "load_run",
    "RunInfo",
    "prepare_data",
    "pruning_start",
    "resolve_budgets",
    "starting_model",
    "starts_smaller",
    "run_data",
    "train",
    "width_matched_options",
]
