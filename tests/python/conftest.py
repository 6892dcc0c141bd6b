import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The suite tests the package built in place in the repository root; with
# TORCH_MLSGD_USE_INSTALLED=1 it tests the installed package instead (run pytest from
# outside the source tree, so that the repository's torch_mlsgd/ is not on sys.path).
# The test helpers, examples and benchmarks that spawn processes read the same variable.
TEST_INSTALLED = os.environ.get("TORCH_MLSGD_USE_INSTALLED", "0") == "1"
if not TEST_INSTALLED and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch_mlsgd  # noqa: E402

if TEST_INSTALLED and os.path.dirname(os.path.dirname(os.path.abspath(torch_mlsgd.__file__))) == ROOT:
    raise RuntimeError(
        f"TORCH_MLSGD_USE_INSTALLED=1, but torch_mlsgd was imported from the source tree ({torch_mlsgd.__file__}); "
        "run pytest from outside the repository"
    )


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def threads():
    """Runs a test at a given torch thread count and restores the old one."""
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)
