"""AttentionGCN on real SBU data, end to end (skipped without ../shared/data)."""

import numpy as np
import pytest

from keras_gcnprune.data import Preprocessing, load_sbu
from keras_gcnprune.training import TrainConfig, train

pytestmark = pytest.mark.real_data


def sbu_fold(real_data, fold, tmp_path, dataset=None):
    dataset = dataset or load_sbu(real_data / "sbu_kinect_interaction")
    config = TrainConfig(model="attention_gcn", dataset="sbu", protocol=f"fold{fold}", epochs=80,
                         refit=False,
                         preprocessing=Preprocessing(frames=32))
    return train(config, tmp_path / f"fold{fold}", dataset=dataset, verbose=0)["test_accuracy"]


def test_one_sbu_fold_is_learned(real_data, tmp_path):
    assert sbu_fold(real_data, 3, tmp_path) >= 0.9


@pytest.mark.slow
def test_sbu_five_fold_mean_reaches_93_percent(real_data, tmp_path):
    dataset = load_sbu(real_data / "sbu_kinect_interaction")
    accuracies = [sbu_fold(real_data, fold, tmp_path, dataset) for fold in range(1, 6)]
    assert np.mean(accuracies) >= 0.93, accuracies
