import keras
import numpy as np
import pytest

from keras_gcnprune import models
from keras_gcnprune.pruning import ConstantSparsity, MagnitudePruning
from keras_gcnprune.reports import PruningSummaries


def _tags(log_dir) -> dict[str, list[int]]:
    import tensorflow as tf

    tags = {}
    for event_file in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return {tag: sorted(steps) for tag, steps in tags.items()}


def test_scalars_per_layer_at_every_epoch_end_at_the_pruning_step(tmp_path):
    model = models.build("attention_gcn", "sbu", num_classes=3, frames=8, heads=2,
                         head_channels=4, graph_channels=8)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).standard_normal((8, 8, 15, 3)).astype("float32")
    callbacks = [MagnitudePruning(ConstantSparsity(0.9, frequency=1)),
                 PruningSummaries(str(tmp_path))]
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0, callbacks=callbacks)
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0, callbacks=callbacks)
    tags = _tags(tmp_path)
    assert tags["pruning/graph_conv/channels/rate"] == [2, 4, 6]  # a second fit continues
    assert "pruning/classifier/channels/disconnected" in tags
    assert "pruning/attention/adjacency/rate" in tags
    assert tags["pruning/total/disconnected_fraction"] == [2, 4, 6]


def test_a_model_without_masked_layers_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match="no prunable layers"):
        model.fit(np.zeros((2, 4)), np.zeros((2, 2)), verbose=0,
                  callbacks=[PruningSummaries(str(tmp_path))])
