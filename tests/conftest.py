"""Shared fixtures, and each xdist worker's share of the cores."""

import os

import pytest

THREADS_GIVEN = None  # OMP_NUM_THREADS as the test session found it (pytest_configure reads it)


def cores_per_worker() -> int | None:
    """Under ``pytest -n N`` (``make test``): the cores each of the N workers may use, None outside xdist. The usable
    cores are counted as ``lcmae_core.plan.usable_cores`` counts them, here again because importing the package
    would import torch before ``pytest_configure`` has set the threads it starts with."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(workers))


def pytest_configure(config):
    """Each xdist worker, and every process its tests start (training workers, notebook kernels, the device scripts'
    rehearsals), runs on its share of the cores: OpenMP's threads (torch's, OpenBLAS's) default to every core, and
    with two workers on two cores each then ran twice the threads there were cores for. Measured: three small
    benchmarks side by side on 2 cores took 12.2-13.4 s of wall and 7.8-9.4 s of CPU each at torch's default
    threads, 8.0-8.2 s and 5.3-5.5 s at one thread. Set before torch is imported (it reads the variable once); an
    OMP_NUM_THREADS already set is kept."""
    global THREADS_GIVEN
    THREADS_GIVEN = os.environ.get("OMP_NUM_THREADS")
    share = cores_per_worker()
    if share is not None and THREADS_GIVEN is None:
        os.environ["OMP_NUM_THREADS"] = str(share)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train faster on one thread, and a shared machine punishes oversubscription."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The test files that take a minute or more of a worker (``pytest --durations``), the heaviest first. ``make test``
# shares files out over the cores (``--dist loadfile``) in collection order (``--no-loadscope-reorder``: xdist's own
# order, by number of tests, puts the long rehearsals of few tests last, where one worker may end up running them
# alone); sorted here, the long files start first and the short ones fill in around them.
HEAVY_FIRST = ("test_records.py", "test_book.py", "test_record_parts.py", "test_official_bench.py",
               "test_comparison_screen.py", "test_screened.py", "test_testability.py", "test_checkpoint_route.py",
               "test_train_resume.py", "test_locality_screen.py", "test_batch.py", "test_plan.py",
               "test_reliability.py", "test_probe_screen.py", "test_cli.py", "test_collapse.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its tests' order
