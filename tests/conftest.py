"""Shared fixtures."""

import pytest


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
