"""torch 2.x integration: fake kernels, opcheck, and a torch.compile'd training step.

Skipped on torch 1.x (no fake kernels, no torch.compile); they run where a torch 2.x is
installed (the GPU machine of tools/gpu_check.sh, or a pip torch).
"""

import pytest
import torch

import torch_mlsgd

TORCH2 = int(torch.__version__.split(".")[0]) >= 2
pytestmark = pytest.mark.skipif(not (TORCH2 and torch_mlsgd.HAS_FAKE_KERNELS),
                                reason=f"needs torch >= 2.1 with fake kernels (this is torch {torch.__version__})")


def _opcheck():
    check = getattr(torch.library, "opcheck", None)
    if check is None:
        from torch.testing._internal.optests import opcheck as check  # torch 2.1 - 2.3
    return check


def devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", devices())
def test_opcheck_of_every_op(device):
    opcheck = _opcheck()
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3, 700, device=device, dtype=dtype)
        opcheck(torch.ops.mlsgd.laplacian_smooth.default, (x, 1.0, 2, "direct"))
        opcheck(torch.ops.mlsgd.laplacian_smooth.default, (x, 1.0, 1, "fft"))
        opcheck(torch.ops.mlsgd.laplacian_smooth_.default, (x.clone(), 0.5, 1, "auto"))
        params = [torch.randn(50, device=device, dtype=dtype), torch.randn(4, 5, device=device, dtype=dtype)]
        grads = [torch.randn_like(p) for p in params]
        buffers = [torch.zeros_like(p) for p in params]
        opcheck(torch.ops.mlsgd.lsgd_step_.default,
                (params, grads, buffers, [True, True], 0.1, 1.0, 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto"))


@pytest.mark.parametrize("device", devices())
def test_compiled_op_matches_eager(device):
    x = torch.randn(1000, device=device)
    compiled = torch.compile(lambda t: torch_mlsgd.laplacian_smooth(t, 1.0) * 2, fullgraph=True)
    torch.testing.assert_close(compiled(x), torch_mlsgd.laplacian_smooth(x, 1.0) * 2)


@pytest.mark.parametrize("optimizer_class", [torch_mlsgd.LSGD, torch_mlsgd.MLSGD])
def test_compiled_training_step_matches_eager(optimizer_class):
    def setup():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        return model, optimizer_class(model.parameters(), lr=0.05, momentum=0.9)

    x, y = torch.randn(64, 10), torch.randn(64, 1)

    def step(model, optimizer):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    eager_model, eager_opt = setup()
    compiled_model, compiled_opt = setup()
    compiled_step = torch.compile(step)
    for _ in range(4):
        step(eager_model, eager_opt)
        compiled_step(compiled_model, compiled_opt)
    for a, b in zip(eager_model.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
