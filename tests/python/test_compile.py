"""The ops under torch 2.x's compiler: fake kernels and schemas checked by opcheck, and
torch.compile of the op, of a training step, and of a model stepped by an eager optimizer
(on CUDA too where a device is present)."""

import pytest
import torch

import torch_mlsgd

from stepping import mse, small_model_and_data


def _opcheck():
    return torch.library.opcheck


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
        opcheck(torch.ops.mlsgd.lsgd_step_.tensor,
                (params, grads, buffers, [False, False], torch.tensor(0.1),
                 torch.tensor([1.0, 2.0], dtype=torch.float64), 1, 0.9, 0.0, 0.0, False, False, "tensor", "auto"))
        warmup = torch.ops.mlsgd.direct_warmup.default(1.0, 1, dtype)
        halos = [torch.randn(warmup + 3, device=device, dtype=dtype) for _ in range(2)]
        opcheck(torch.ops.mlsgd.laplacian_smooth_shard.default, (x[0], *halos, 1.0, 1))
        opcheck(torch.ops.mlsgd.direct_warmup.default, (1.0, 1, dtype))
        opcheck(torch.ops.mlsgd.check_direct_route.default, (x, 1.0, 2))
    opcheck(torch.ops.mlsgd.scheduled_sigma.default, ("random", 1.0, 0.0, None, 100, 0, 3))
    steps = [torch.tensor(k, dtype=torch.int64) for k in (0, 3, 2**40)]
    opcheck(torch.ops.mlsgd.scheduled_sigmas.default, (steps, "random", 1.0, 0.0, None, 100, 0))
    assert torch.ops.mlsgd.scheduled_sigmas(steps, "cyclic", 1.0, 0.0, 2.0, 10, 0).tolist() == [
        torch.ops.mlsgd.scheduled_sigma("cyclic", 1.0, 0.0, 2.0, 10, 0, k) for k in (0, 3, 2**40)]
    # opcheck's AOT test cannot compare string outputs; the other three apply.
    opcheck(torch.ops.mlsgd.cpu_kernels.default, (),
            test_utils=("test_schema", "test_autograd_registration", "test_faketensor"))


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


@pytest.mark.parametrize("optimizer_class", [torch_mlsgd.LSGD, torch_mlsgd.MLSGD])
def test_compiled_model_with_eager_optimizer_step(optimizer_class):
    eager_model, x, y = small_model_and_data()
    compiled_source, _, _ = small_model_and_data()
    compiled_model = torch.compile(compiled_source)
    eager_opt = optimizer_class(eager_model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    compiled_opt = optimizer_class(compiled_model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for _ in range(5):
        for model, opt in ((eager_model, eager_opt), (compiled_model, compiled_opt)):
            opt.zero_grad()
            mse(model, x, y).backward()
            opt.step()
    for a, b in zip(eager_model.parameters(), compiled_source.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # The compiled model's parameters are the original module's.
    assert all(a is b for a, b in zip(compiled_model.parameters(), compiled_source.parameters()))
