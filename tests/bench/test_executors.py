"""Executors of the accuracy benchmark: local workers and Ray write what a sequential run writes;
a failed training is reported and retried alone."""

import importlib.util
import json
import os
import subprocess
import sys
from unittest.mock import patch

import pytest

from keras_gcnprune.bench import AccuracyBench, TrainingsFailed, run_accuracy
from keras_gcnprune.bench.executors import (
    LocalExecutor,
    RayExecutor,
    SequentialExecutor,
    cpu_shares,
    make_executor,
)
from keras_gcnprune.bench.progress import Progress
from tests.conftest import FAST, SMALL

BENCH = AccuracyBench(**SMALL,
                      dataset="synthetic", methods=("dense", "magnitude", "tcp"), rates=(0.9,),
                      seeds=1, epochs=1, frames=16)
TIMINGS = ("train_time_s", "wall_time_s", "run")


def quiet(total):
    import io

    return Progress(total, stream=io.StringIO())


def records_without_timings(out_dir):
    records = json.loads((out_dir / "results.json").read_text())["records"]
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The sweep run sequentially from the command line, with one TensorFlow thread as each
    two-job worker of this 2-CPU test has (thread counts change float sums on the CPU)."""
    out = tmp_path_factory.mktemp("sequential")
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "keras_gcnprune.cli.main", "bench", "accuracy",
                    *FAST,
                    "--dataset", "synthetic", "--methods", "dense,magnitude,tcp", "--rates",
                    "0.9", "--seeds", "1", "--epochs", "1", "--frames", "16", "--out",
                    str(out)], env=environment, check=True, capture_output=True)
    return records_without_timings(out)


def two_cpus():
    """Two workers of one CPU each, as on the 2-core machines the suite runs on."""
    return patch("keras_gcnprune.bench.executors.cpu_shares",
                 lambda jobs, cpus=None: [[0], [1]])


def test_two_local_jobs_write_the_runs_and_records_of_a_sequential_run(sequential, tmp_path):
    with two_cpus():
        run_accuracy(BENCH, tmp_path, progress=quiet(3), plots=False,
                     executor=LocalExecutor(2))
    assert records_without_timings(tmp_path) == sequential
    assert sorted(p.parents[2].name for p in tmp_path.glob("runs/*/*/seed0/metrics.json")) \
        == ["dense", "magnitude_0.9", "tcp_0.9"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason='Ray is not installed (pip install "keras-gcnprune[ray]")')
def test_a_local_ray_cluster_of_two_cpus_writes_what_a_sequential_run_writes(sequential,
                                                                             tmp_path):
    import ray

    try:
        run_accuracy(BENCH, tmp_path, progress=quiet(3), plots=False,
                     executor=make_executor(2, "ray"))
        assert ray.cluster_resources()["CPU"] == 2
    finally:
        ray.shutdown()
    assert records_without_timings(tmp_path) == sequential


@pytest.mark.parametrize("executor", [SequentialExecutor(), LocalExecutor(2)],
                         ids=["sequential", "local"])
def test_a_failed_training_is_reported_and_does_not_stop_the_others_and_a_rerun_retries_it(
        tmp_path, executor):
    blocked = tmp_path / "runs" / "magnitude_0.9" / "cross_subject" / "seed0"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the run directory goes")  # its training fails
    with pytest.raises(TrainingsFailed, match=r"1 training\(s\) failed \(magnitude_0.9 "
                                              r"cross_subject seed0; first: "
                                              r"keras_gcnprune.outputs.OutputConflictError"):
        run_accuracy(BENCH, tmp_path, progress=quiet(3), plots=False, executor=executor)
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert list(failures) == ["magnitude_0.9 cross_subject seed0"]
    assert "Traceback" in failures["magnitude_0.9 cross_subject seed0"]["traceback"]
    methods = {r["method"] for r in json.loads((tmp_path / "results.json").read_text())
               ["records"]}
    assert methods == {"dense", "tcp"}  # the others finished and are in the results
    blocked.unlink()
    retried = []
    run_accuracy(BENCH, tmp_path, progress=quiet(3), plots=False, executor=executor,
                 on_training=lambda t: retried.append(t.name))
    assert retried == ["magnitude_0.9"] and not (tmp_path / "failures.json").exists()


def test_cpus_are_dealt_out_and_bad_executor_settings_are_refused():
    assert cpu_shares(2, [0, 1]) == [[0], [1]]
    assert cpu_shares(3, [0, 1]) == [[0], [1], [0]]  # more jobs than CPUs: shared
    assert isinstance(make_executor(), SequentialExecutor)
    assert isinstance(make_executor(1), SequentialExecutor)
    assert make_executor(3).jobs == 3
    ray = make_executor(4, "ray", task_cpus=0.5)
    assert isinstance(ray, RayExecutor) and ray.local_cpus == 2
    with pytest.raises(ValueError, match="apply to the Ray executor only"):
        make_executor(2, address="10.0.0.1:6379")
    with pytest.raises(ValueError, match="Unknown executor 'slurm'"):
        make_executor(2, "slurm")


STOPPED_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from keras_gcnprune.bench.executors import LocalExecutor



def setup():
    return None

def work(state, item):
    Path(sys.argv[1], f"started{item}").write_text(str(os.getpid()))
    time.sleep(600)

if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    for _ in LocalExecutor(2).run(work, range(6), setup):
        pass
"""


def test_a_stopped_local_run_ends_its_workers_and_starts_nothing_queued(tmp_path):
    import signal
    import time

    script = tmp_path / "stopped.py"
    script.write_text(STOPPED_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("started*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    started = sorted(tmp_path.glob("started*"))
    assert len(started) == 2, "the two workers never started their first items"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM  # not after the 600 s items
    assert sorted(tmp_path.glob("started*")) == started  # nothing queued began
    for worker in (int(path.read_text()) for path in started):
        with pytest.raises(ProcessLookupError):
            os.kill(worker, 0)
