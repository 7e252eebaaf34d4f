"""Channel blocks: TCP confined to whole channels, so that compaction removes the others."""

import keras
import numpy as np
import pytest

from keras_gcnprune.layers import GraphAttention
from keras_gcnprune.pruning import (
    assign_masks,
    compact,
    prunable_weights,
    reachability,
    topologically_consistent_masks,
)
from keras_gcnprune.pruning.channels import ChannelGroups, channel_block
from keras_gcnprune.pruning.tcp import magnitude_scores
from tests.families import FAMILIES


def kernel_entries(model, include_adjacency=True):
    return sum(int(np.prod(w.kernel.shape)) for w in prunable_weights(model, include_adjacency))


def channel_entries(model):
    """What compaction narrows: learned adjacencies keep their joint-by-joint shape."""
    return kernel_entries(model, include_adjacency=False)


def kept(masks):
    return int(sum(mask.sum() for mask in masks.values()))


@pytest.mark.parametrize("name", sorted(FAMILIES))
@pytest.mark.parametrize("rate", [0.9, 0.95, 0.99])
def test_block_tcp_keeps_the_budget_on_paths_and_compacts_to_the_block(name, rate):
    keras.utils.set_random_seed(0)
    model = FAMILIES[name]()
    target = round(kernel_entries(model) * (1 - rate))
    masks = topologically_consistent_masks(model, rate, block_density=0.5)
    assert kept(masks) == target
    used = reachability(model, masks).used
    assert all(np.all(mask <= used[path]) for path, mask in masks.items())
    x = np.random.default_rng(1).standard_normal((3, *model.input_shape[1:])).astype("float32")
    assign_masks(model, masks)
    small = compact(model)
    np.testing.assert_allclose(small(x).numpy(), model(x).numpy(), atol=1e-5, rtol=0)
    # what is left is about the block (twice the kept weights), not the whole network; on tiny
    # budgets one channel per layer and the full input channels weigh more
    assert channel_entries(small) <= 3 * max(target, 250)
    assign_masks(model, topologically_consistent_masks(model, rate))
    assert channel_entries(compact(model)) > 3 * channel_entries(small)


def test_block_holds_the_budget_in_the_strongest_channels():
    keras.utils.set_random_seed(0)
    model = FAMILIES["stgcn"]()
    scores = magnitude_scores(model)
    target = 500
    block = channel_block(model, scores, target, density=0.5)
    used = reachability(model, block).used
    assert sum((block[p] * used[p]).sum() for p in block) >= 2 * target
    for layer in model.layers:
        if layer.name == "classifier":
            assert block[layer.kernel_mask.path].all(), "the logits' group is never cut"
        elif layer.name == "block1_temporal":
            kept_channels = block[layer.kernel_mask.path].reshape(-1, 32).any(axis=0)
            assert 0 < kept_channels.sum() < 32
            strength = np.abs(layer.kernel.numpy()).reshape(-1, 32).sum(axis=0)
            assert strength[kept_channels].min() >= np.median(strength)


def test_residual_groups_keep_the_same_channels_in_every_layer_that_writes_them():
    keras.utils.set_random_seed(0)
    model = FAMILIES["stgcn"]()
    block = channel_block(model, magnitude_scores(model), 300, density=0.5)
    groups = ChannelGroups(model)
    by_group = {}
    for layer, _, outputs in groups.steps:
        if hasattr(layer, "kernel_mask") and layer.name != "classifier":
            mask = block[layer.kernel_mask.path]
            channels = np.moveaxis(mask, -1, 0).reshape(mask.shape[-1], -1).any(axis=1)
            by_group.setdefault(groups.find(id(outputs[0])), []).append(channels)
    shared = [channels for channels in by_group.values() if len(channels) > 1]
    assert shared, "stgcn has residual additions"
    for channels in shared:
        assert all(np.array_equal(channels[0], other) for other in channels[1:])


def test_attention_heads_narrow_under_block_tcp():
    keras.utils.set_random_seed(0)
    model = FAMILIES["attention_gcn"]()
    assign_masks(model, topologically_consistent_masks(model, 0.95, block_density=0.5))
    attention = compact(model).get_layer("attention")
    assert isinstance(attention, GraphAttention) and sum(attention.widths) < 32
    # heads fill up one after the other, so few heads (and adjacencies) remain
    assert attention.heads < 8 and sum(width < 8 for width in attention.widths) <= 1


@pytest.mark.parametrize("density", [0.0, -0.5, 1.5])
def test_bad_block_density_is_refused(density):
    model = FAMILIES["attention_gcn"]()
    with pytest.raises(ValueError, match="block_density must be in"):
        topologically_consistent_masks(model, 0.9, block_density=density)
