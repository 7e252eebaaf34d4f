"""Where a benchmark's trainings run: in this process, in local worker processes, or on Ray.

An executor runs `work(state, item)` for every item and yields `(item, failure)` as each one
ends, `failure` being None or the traceback of what it raised, so that one failed training
never stops the others. `state` comes from `setup()`, called once per worker process (the
benchmark's dataset: loaded once per worker, not once per training); in the caller's own
process it is the `state` the caller passes, when it already has it.

Floating-point sums on the CPU depend on the number of threads that compute them. A worker runs
TensorFlow with as many threads as it has CPUs (a local worker: its share; a Ray task: the CPUs
it declares), while a sequential run uses every CPU, so the two can differ in the last bits of
their weights and, rarely, in an accuracy. With the same threads per training (for example
`TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1` for a sequential run beside workers of one
CPU each), every executor gives the same results: the trainings are otherwise pure functions of
their settings and seeds.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

Work = Callable[[Any, Any], None]
Setup = Callable[[], Any]
OnStart = Callable[[Any], None]

RAY_INSTALL_HINT = 'pip install "keras-gcnprune[ray]"'


def _attempt(work: Work, state: Any, item: Any) -> str | None:
    try:
        work(state, item)
    except Exception:  # reported with its traceback; KeyboardInterrupt still stops everything
        return traceback.format_exc()
    return None


class SequentialExecutor:
    """Every item in this process, one after the other (the default)."""

    def run(self, work: Work, items: Iterable, setup: Setup, on_start: OnStart | None = None,
            state: Any = None) -> Iterator[tuple[Any, str | None]]:
        state = setup() if state is None else state
        for item in items:
            if on_start is not None:
                on_start(item)
            yield item, _attempt(work, state, item)


_WORKER_STATE: dict[str, Any] = {}


def use_threads(threads: int) -> None:
    """Sets TensorFlow's intra- and inter-op thread pools of this (fresh) process; the same
    as `TF_NUM_INTRAOP_THREADS` and `TF_NUM_INTEROP_THREADS` in its environment."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _start_worker(setup: Setup, slots, cpus: list[list[int]]) -> None:
    """Runs once in each worker process: its share of the CPUs (and one GPU), then `setup`."""
    slot = slots.get()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus[slot])
    use_threads(len(cpus[slot]))
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    tf.config.set_visible_devices([devices[slot % len(devices)]] if devices else [], "GPU")
    _WORKER_STATE["state"] = setup()


def _work_in_worker(work: Work, item: Any) -> str | None:
    return _attempt(work, _WORKER_STATE["state"], item)


def cpu_shares(jobs: int, cpus: list[int] | None = None) -> list[list[int]]:
    """The CPUs of each of `jobs` workers: this process's CPUs dealt out in turn (a worker
    shares them with others when there are fewer CPUs than jobs).

    Example:
        >>> cpu_shares(2, [0, 1, 2, 3, 4])
        [[0, 2, 4], [1, 3]]
    """
    if cpus is None:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else list(range(os.cpu_count() or 1))
    return [cpus[slot::jobs] or [cpus[slot % len(cpus)]] for slot in range(jobs)]


class LocalExecutor:
    """`jobs` worker processes on this machine, each pinned to its share of the CPUs and, where
    there are GPUs, to one of them.

    Args:
        jobs: Worker processes, at least 2 (1 is `SequentialExecutor`).
    """

    def __init__(self, jobs: int) -> None:
        if jobs < 2:
            raise ValueError(f"LocalExecutor needs at least 2 jobs, got {jobs}; one job runs "
                             "in this process (SequentialExecutor).")
        self.jobs = jobs

    def run(self, work: Work, items: Iterable, setup: Setup, on_start: OnStart | None = None,
            state: Any = None) -> Iterator[tuple[Any, str | None]]:
        items = list(items)
        if not items:
            return
        jobs = min(self.jobs, len(items))
        context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
        slots = context.Queue()
        for slot in range(jobs):
            slots.put(slot)
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                   initargs=(setup, slots, cpu_shares(jobs)))
        try:
            futures = {}
            for item in items:
                if on_start is not None:
                    on_start(item)
                futures[pool.submit(_work_in_worker, work, item)] = item
            for future in as_completed(futures):
                yield futures[future], future.result()
        except BaseException:  # Ctrl-C, SIGTERM's exit, or the caller stopped iterating
            _stop_now(pool)
            raise
        pool.shutdown()


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Drops the queued items and ends the workers' current ones: leaving the pool normally
    would first finish every queued item (hours of trainings), and an unfinished run is
    trained again when the benchmark is rerun."""
    workers = list((pool._processes or {}).values())  # no public handle before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join()


def _work_on_ray(work: Work, item: Any, setup: Setup, threads: int) -> str | None:
    if "state" not in _WORKER_STATE:  # a Ray worker process runs many tasks: set up once
        use_threads(threads)
        _WORKER_STATE["state"] = setup()
    return _attempt(work, _WORKER_STATE["state"], item)


class RayExecutor:
    """Every item a Ray task, on an existing Ray cluster or a local one.

    Args:
        address: The cluster's address (`ray.init(address=...)`); None: a local cluster.
        cpus: CPUs each task declares (`num_cpus`).
        gpus: GPUs each task declares (`num_gpus`; 0: none).
        local_cpus: CPUs of a local cluster (None: all of this machine's).
    """

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0,
                 local_cpus: int | None = None) -> None:
        self.address, self.cpus, self.gpus, self.local_cpus = address, cpus, gpus, local_cpus

    def run(self, work: Work, items: Iterable, setup: Setup, on_start: OnStart | None = None,
            state: Any = None) -> Iterator[tuple[Any, str | None]]:
        try:
            import ray
        except ImportError:
            raise ImportError(f"The Ray executor needs Ray: {RAY_INSTALL_HINT}.") from None
        if not ray.is_initialized():
            ray.init(address=self.address, num_cpus=None if self.address else self.local_cpus,
                     include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(_work_on_ray)
        pending = {}
        for item in items:
            if on_start is not None:
                on_start(item)
            pending[remote.remote(work, item, setup, max(1, int(self.cpus)))] = item
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            yield pending.pop(ready), ray.get(ready)


EXECUTORS = ("local", "ray")


def make_executor(jobs: int | None = None, executor: str = "local", address: str | None = None,
                  task_cpus: float = 1, task_gpus: float = 0):
    """The executor of the benchmark's options.

    Args:
        jobs: Local: worker processes (None or 1: this process). Ray without `address`: the
            trainings that run at once on the local cluster it starts (None: one per CPU).
        executor: `"local"` or `"ray"`.
        address: Ray only: an existing cluster's address.
        task_cpus: Ray only: CPUs each training declares.
        task_gpus: Ray only: GPUs each training declares.
    """
    if executor == "ray":
        local_cpus = None if address or jobs is None else max(1, round(jobs * task_cpus))
        return RayExecutor(address, task_cpus, task_gpus, local_cpus)
    if executor != "local":
        raise ValueError(f"Unknown executor {executor!r}; choose one of {EXECUTORS}.")
    if address is not None or task_cpus != 1 or task_gpus != 0:
        raise ValueError("address, task_cpus and task_gpus apply to the Ray executor only "
                         "(executor='ray').")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}.")
    return LocalExecutor(jobs) if jobs and jobs > 1 else SequentialExecutor()
