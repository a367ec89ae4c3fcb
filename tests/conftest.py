"""Test configuration: without a GPU, Triton kernels run under Triton's interpreter on CPU tensors.

TRITON_INTERPRET must be set before triton is imported, hence here, before any test module imports the package.
"""

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def kernel_device() -> str:
    """Where the Triton kernels run: the GPU when there is one, else CPU tensors through the interpreter."""
    return "cuda" if HAS_CUDA else "cpu"


@pytest.fixture(params=["triton", "torch"])
def backend(request, kernel_device):
    """Both implementations on the tensors they serve (yields the device): the kernels on the GPU or under the
    interpreter, the chunked PyTorch path on CPU."""
    from flash_attention import use_backend

    device = kernel_device if request.param == "triton" else "cpu"
    with use_backend(request.param):
        yield device


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def pytest_collection_modifyitems(config, items):
    """Without CUDA the GPU suite (tests/st) is deselected, not skipped: it runs on the device machine."""
    if HAS_CUDA:
        return
    gpu = [item for item in items if "gpu" in item.keywords]
    if gpu:
        config.hook.pytest_deselected(items=gpu)
        items[:] = [item for item in items if "gpu" not in item.keywords]
