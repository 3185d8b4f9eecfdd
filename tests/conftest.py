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
