import importlib.util

import pytest

from keras_gcnprune.bench.speed import SPEED_METHODS, SpeedBench, measure_tfmot, run_speed


def test_every_method_gets_a_ratio_to_dense():
    results = run_speed(SpeedBench(models=("attention_gcn",), steps=4, rounds=1, tfmot=False))
    (result,) = results["results"]
    assert set(result["ratios"]) == set(SPEED_METHODS) - {"dense"}
    assert all(ratio > 0 for ratio in result["ratios"].values())
    assert result["dense_ms_per_step"] > 0
    assert "tfmot" not in results


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_model_optimization") is None,
                    reason="needs the tfmot extra: pip install -e '.[tfmot]'")
def test_toolkit_is_timed_in_its_own_process():
    timing = measure_tfmot(SpeedBench(steps=4, rounds=1))
    assert timing["ratio"] > 0 and timing["dense_ms_per_step"] > 0
    assert timing["tfmot"].startswith("0.8")
