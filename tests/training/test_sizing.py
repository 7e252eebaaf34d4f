"""Dense models sized to a pruned model's weights: the small_dense baseline."""

import json
from dataclasses import replace

import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.data import Preprocessing, load_dataset
from keras_gcnprune.pruning import prunable_weights
from keras_gcnprune.reports import model_costs
from keras_gcnprune.training import (
    TrainConfig,
    block_rate_for_budget,
    budget_at_rate,
    build_model,
    rate_for_budget,
    resolve_budgets,
    width_matched_options,
)
from keras_gcnprune.training.sizing import weights_of

JOINTS = Preprocessing()  # joint coordinates: 3 input channels


@pytest.fixture(scope="module")
def gestures():
    return load_dataset("synthetic")


def test_scaled_options_scale_every_width_of_the_family_and_keep_the_rest():
    assert models.scaled_options("attention_gcn", 0.5, {"dropout": 0.1, "heads": 6}) == {
        "dropout": 0.1, "heads": 3, "head_channels": 4, "graph_channels": 16}
    assert models.scaled_options("stgcn", 0.01, {"strides": (1, 2, 2, 1)}) == {
        "strides": (1, 2, 2, 1), "widths": (1, 1, 1, 1)}
    with pytest.raises(ValueError, match="factor must be positive, got 0"):
        models.scaled_options("stgcn", 0)


def test_stgcns_shallower_shapes_keep_the_last_blocks_of_the_model_scaled():
    assert models.width_variants("stgcn") == {"blocks3": {"strides": (1, 2, 1)},
                                              "blocks2": {"strides": (2, 1)}}
    assert models.scaled_options("stgcn", 0.5, {"strides": (2, 1)}) == {
        "strides": (2, 1), "widths": (32, 32)}
    assert models.scaled_options("stgcn", 2.0, {"widths": (8, 16, 24), "strides": (2,)},
                                 fixed=("strides",)) == {"widths": (48,), "strides": (2,)}


@pytest.mark.parametrize("include_adjacency", [True, False])
def test_rate_for_budget_is_the_exact_inverse_and_refuses_a_budget_out_of_reach(
        gestures, include_adjacency):
    model = build_model(TrainConfig(model="attention_gcn", preprocessing=JOINTS), gestures)
    total = model_costs(model)["parameters"]
    unpruned = total - sum(int(np.prod(w.kernel.shape))
                           for w in prunable_weights(model, include_adjacency))
    for budget in (unpruned + 1, unpruned + 777, (unpruned + total) // 2, total - 1):
        rate = rate_for_budget(model, budget, include_adjacency)
        assert 0 < rate < 1 and budget_at_rate(model, rate, include_adjacency) == budget
    for budget in (unpruned, total):
        with pytest.raises(ValueError, match=f"give a budget between {unpruned + 1} and "
                                             f"{total - 1}"):
            rate_for_budget(model, budget, include_adjacency)


def test_budget_at_rate_is_the_unpruned_weights_plus_the_kept_share(gestures):
    model = build_model(TrainConfig(model="attention_gcn", preprocessing=JOINTS), gestures)
    total = model_costs(model)["parameters"]
    pruned = sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(model))
    channels = sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(model, False))
    assert budget_at_rate(model, 0.0) == total
    assert budget_at_rate(model, 0.9) == total - pruned + round(pruned * 0.1)
    assert budget_at_rate(model, 0.9, include_adjacency=False) == \
        total - channels + round(channels * 0.1)


@pytest.mark.parametrize("model", ["attention_gcn", "stgcn"])
def test_matched_widths_give_the_nearest_weight_count_the_family_allows(gestures, model):
    config = TrainConfig(model=model, preprocessing=JOINTS)
    dense = weights_of(config, gestures)
    for target in (dense // 4, dense // 12):
        options = width_matched_options(config, gestures, target)
        matched = weights_of(replace(config, model_options=options), gestures)
        assert abs(matched - target) < 0.25 * target, (target, matched, options)
        # one width step either way is farther from the target
        wider = models.scaled_options(model, 1.25, options)
        assert abs(weights_of(replace(config, model_options=wider), gestures) - target) >= \
            abs(matched - target)


def test_a_budget_below_the_smallest_model_gives_the_smallest(gestures):
    config = TrainConfig(model="attention_gcn", preprocessing=JOINTS)
    options = width_matched_options(config, gestures, 10)
    assert options == {"heads": 1, "head_channels": 1, "graph_channels": 1}


def test_a_pruned_models_live_weights_leave_out_its_dead_channels():
    import keras

    from keras_gcnprune.layers import MaskedDense
    from keras_gcnprune.training.run import compacted_metrics

    inputs = keras.Input((4,))
    hidden = MaskedDense(3, activation="relu", bias_initializer="ones", name="hidden")(inputs)
    model = keras.Model(inputs, MaskedDense(2, name="out")(hidden))
    mask = np.ones((4, 3), "float32")
    mask[:, 0] = 0.0  # hidden unit 0 loses every input: a constant, folded into out's bias
    model.get_layer("hidden").masked_weights()[0].mask.assign(mask)
    assert model_costs(model)["kept_parameters"] == 23 - 4
    # unit 0's bias and its two outgoing weights are gone: 4 * 2 + 2 + 2 * 2 + 2
    assert compacted_metrics(model) == {"compacted_parameters": 16, "compacted_macs": 12,
                                        "compacted_nonzero_parameters": 16}


def test_block_rate_for_budget_compacts_to_the_closest_size_and_keeps_the_masks(gestures):
    from keras_gcnprune.pruning import assign_masks, compact, topologically_consistent_masks
    from keras_gcnprune.pruning.topology import current_masks

    model = build_model(TrainConfig(model="attention_gcn", preprocessing=JOINTS), gestures)
    before = current_masks(model)

    def compacted(rate, counted="parameters"):
        assign_masks(model, topologically_consistent_masks(model, rate, block_density=1.0))
        return model_costs(compact(model))[counted]

    budget = budget_at_rate(model, 0.95)
    rate = block_rate_for_budget(model, budget)
    assert all(np.array_equal(mask, before[path]) for path, mask in current_masks(model).items())
    reached = compacted(rate)
    sizes = {compacted(r) for r in np.linspace(0.8, 0.999, 40)}
    assert abs(reached - budget) == min(abs(size - budget) for size in sizes | {reached})
    assert rate < rate_for_budget(model, budget)  # dead channels' biases free weights
    # near the step's first rate, where the block is full, not at an edge training crosses
    assert reached * 0.95 <= compacted(rate, "kept_parameters") < reached
    assert compacted(rate - 0.002) == reached == compacted(rate + 0.002)
    smallest = compacted(0.99999)
    assert compacted(block_rate_for_budget(model, smallest // 2)) == smallest
    with pytest.raises(ValueError, match=f"below the smallest compacted .* \\({smallest:,} "
                                         "weights.*--block-density none"):
        block_rate_for_budget(model, smallest // 2, reachable_only=True)
    assert block_rate_for_budget(model, smallest, reachable_only=True) > 0.9
    total = model_costs(model)["parameters"]
    with pytest.raises(ValueError, match=f"{total + 1:,} weights is more than attention_gcn "
                                         f"has \\({total:,}\\)"):
        block_rate_for_budget(model, total + 1)


def test_block_rate_for_a_macs_budget_compacts_to_the_closest_macs_or_at_most_them(gestures):
    from keras_gcnprune.pruning import assign_masks, compact, topologically_consistent_masks

    model = build_model(TrainConfig(model="attention_gcn", preprocessing=JOINTS), gestures)

    def compacted_macs(rate):
        assign_masks(model, topologically_consistent_masks(model, rate, block_density=1.0))
        return model_costs(compact(model))["macs"]

    dense = model_costs(model)["macs"]
    for share in (0.2, 0.1):
        budget = round(share * dense)
        reached = compacted_macs(block_rate_for_budget(model, budget, cost="macs"))
        sizes = {compacted_macs(r) for r in np.linspace(0.5, 0.99, 25)}
        assert abs(reached - budget) == min(abs(size - budget) for size in sizes | {reached})
        assert abs(reached - budget) < 0.1 * budget
        ceiling = compacted_macs(block_rate_for_budget(model, budget, cost="macs", at_most=True))
        assert ceiling == max(size for size in sizes | {ceiling} if size <= budget)
    above = min(size for size in sizes if size > budget)  # a budget just under a step
    assert compacted_macs(block_rate_for_budget(model, above - 1, cost="macs")) == above
    assert compacted_macs(block_rate_for_budget(model, above - 1, cost="macs",
                                                at_most=True)) < above
    with pytest.raises(ValueError, match=f"{dense + 1:,} MACs is more than"):
        block_rate_for_budget(model, dense + 1, cost="macs")
    with pytest.raises(ValueError, match="Unknown cost 'flops'; choose one of parameters, macs"):
        block_rate_for_budget(model, 100, cost="flops")


def test_a_mac_share_resolves_to_the_block_rate_of_that_share_of_the_macs(gestures):
    from keras_gcnprune.pruning import PruningConfig

    config = TrainConfig(model="attention_gcn", preprocessing=JOINTS, seed=3,
                         pruning=PruningConfig(method="tcp", mac_share=0.1))
    resolved = resolve_budgets(config, gestures)
    assert resolved.pruning.mac_share is None and resolved.model_options == config.model_options
    keras.utils.set_random_seed(3)  # the model the training starts from
    model = build_model(config, gestures)
    assert resolved.pruning.rate == block_rate_for_budget(
        model, round(0.1 * model_costs(model)["macs"]), cost="macs", at_most=True)
    assert resolve_budgets(resolved, gestures) is resolved  # nothing left to resolve
    for settings, message in [({"method": "magnitude"}, "magnitude prunes single weights"),
                              ({"block_density": None}, "mac_share needs channel blocks"),
                              ({"budgets": (900,)}, "Give budgets or mac_share, not both"),
                              ({"mac_share": 1.0}, "mac_share must be in \\(0, 1\\)")]:
        with pytest.raises(ValueError, match=message):
            PruningConfig(**{"method": "tcp", "mac_share": 0.1, **settings})


def test_matched_widths_to_macs_give_the_nearest_macs_the_family_allows(gestures):
    config = TrainConfig(model="stgcn", preprocessing=JOINTS)

    def macs(options):
        return model_costs(build_model(replace(config, model_options=options), gestures))["macs"]

    target = macs({}) // 10
    options = width_matched_options(config, gestures, target, cost="macs")
    assert abs(macs(options) - target) < 0.25 * target
    by_weights = width_matched_options(config, gestures, weights_of(config, gestures) // 10)
    assert options != by_weights  # MACs and weights shrink at different paces
    for factor in (0.8, 1.25):  # one width step either way is farther from the target
        assert abs(macs(models.scaled_options("stgcn", factor, options)) - target) >= \
            abs(macs(options) - target)


def test_a_training_resolves_its_budget_on_the_model_it_starts_from(tmp_path):
    from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
    from keras_gcnprune.pruning import PruningConfig
    from keras_gcnprune.training import TrainConfig, train

    gestures = make_synthetic_gestures(subjects=4, test_subjects=1, repetitions=2, seed=0)
    config = TrainConfig(model="attention_gcn", epochs=1, refit=False, validation=0.0,
                         preprocessing=Preprocessing(frames=16, streams=("joint",)),
                         pruning=PruningConfig(method="tcp", budgets=(1500,)))
    metrics = train(config, tmp_path / "run", dataset=gestures, verbose=0)
    # the configured model (22,646 weights) is over 4 times the budget: the default start
    # ratio prunes the family's model of about 6,000 instead
    assert metrics["nonzero_parameters"] == 1500
    assert abs(metrics["parameters"] - 6000) < 0.15 * 6000  # widths come in whole channels
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert recorded["pruning"]["budgets"] == [] and recorded["pruning"]["start_ratio"] is None
    assert recorded["model_options"]["heads"] < 8 and 0.7 < recorded["pruning"]["rate"] < 0.9
    again = train(config, tmp_path / "run", dataset=gestures, verbose=0)  # the same run: kept
    assert again == metrics
    with pytest.raises(ValueError, match="Give budgets or rates, not both"):
        PruningConfig(method="mrmp", budgets=(1500, 900), rates=(0.9, 0.95))
    assert PruningConfig(method="tcp", start_ratio=4.0).start_ratio is None  # no budget


def test_the_start_ratio_only_ever_starts_from_a_smaller_model():
    from keras_gcnprune.data import Preprocessing, make_synthetic_gestures
    from keras_gcnprune.pruning import PruningConfig
    from keras_gcnprune.training import TrainConfig, resolve_budgets

    gestures = make_synthetic_gestures(subjects=4, test_subjects=1, repetitions=2, seed=0)

    def start(budget: int, ratio: float | None) -> dict:
        config = TrainConfig(model="attention_gcn", preprocessing=Preprocessing(
            frames=16, streams=("joint",)), pruning=PruningConfig(
            method="tcp", budgets=(budget,), start_ratio=ratio))
        return resolve_budgets(config, gestures).model_options

    assert start(1500, 10.0)["heads"] < 8  # 22,646 weights > 15,000
    assert start(1500, None) == {}  # the configured model whatever the budget
    assert start(2500, 10.0) == {}  # 22,646 < 25,000: never a wider start
