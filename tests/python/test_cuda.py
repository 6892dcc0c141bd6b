"""The CUDA ops against the CPU ones (which the rest of the suite checks against float64
references), the fused step, streams, and training on a GPU. Skipped without CUDA."""

import pytest
import torch

import torch_mlsgd
from torch_mlsgd import LSGD, MLSGD, laplacian_smooth, laplacian_smooth_

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SIZES = [1, 2, 3, 100, 8224, 3 * 8224 + 17, 100_003, 1_000_003]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10, torch.float16: 2e-3, torch.bfloat16: 1e-2}


def relative_error(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_cuda_matches_cpu(dtype, backend):
    g = torch.Generator().manual_seed(0)
    for n in SIZES:
        v = torch.randn(n, generator=g, dtype=torch.float64)
        for order in (1, 2, 3):
            for sigma in (0.5, 1.0, 30.0, 1e4):
                expected = laplacian_smooth(v, sigma, order)  # float64 on the CPU
                try:
                    out = laplacian_smooth(v.to("cuda", dtype), sigma, order, backend=backend)
                except ValueError as error:  # the direct route's shared-memory limit
                    assert backend == "direct" and "shared memory" in str(error)
                    continue
                assert out.is_cuda and out.dtype == dtype and out.shape == v.shape
                assert relative_error(out, expected) < TOL[dtype], (n, order, sigma)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_cuda(dtype):
    v = torch.randn(5000, device="cuda").to(dtype)
    expected = laplacian_smooth(v.float().cpu(), 1.0).to(dtype)
    out = laplacian_smooth(v, 1.0)
    assert out.dtype == dtype and relative_error(out, expected) < TOL[dtype]


def test_in_place_and_strided_inputs_on_cuda():
    m = torch.randn(300, 700, device="cuda", dtype=torch.float64)
    for backend in ("auto", "fft", "direct"):
        expected = laplacian_smooth(m.cpu(), 2.0, backend=backend)
        t = m.t().contiguous().t()
        assert relative_error(laplacian_smooth(t, 2.0, backend=backend), expected) < 1e-10
        w = m.clone()
        assert laplacian_smooth_(w, 2.0, backend=backend) is w
        assert relative_error(w, expected) < 1e-10


def test_autograd_on_cuda():
    x = torch.randn(4, 500, device="cuda", dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 500, device="cuda", dtype=torch.float64)
    (laplacian_smooth(x, 1.5) * w).sum().backward()
    assert relative_error(x.grad, laplacian_smooth(w.cpu(), 1.5)) < 1e-10


CONFIGS = [
    dict(),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(momentum=0.8, dampening=0.2, maximize=True),
    dict(momentum=0.9, flatten="group"),
    dict(momentum=0.9, backend="fft"),
    dict(sigma=0.0, momentum=0.9),
    dict(sigma=5000.0, momentum=0.9),  # the FFT route through auto
    dict(order=2, momentum=0.9),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_fused_step_on_cuda_matches_cpu(dtype, config):
    shapes = [(64, 3, 7, 7), (64,), (1,), (0,), (512, 300), (12_007,), (100,)]

    def run(device):
        g = torch.Generator().manual_seed(1)
        params = [torch.randn(s, generator=g, dtype=dtype).to(device).requires_grad_() for s in shapes]
        optimizer = LSGD(params, lr=0.05, **{"sigma": 1.0, **config})
        for _ in range(3):
            for p in params:
                p.grad = torch.sin(3 * p.detach()) + 0.5 * p.detach()
            optimizer.step()
        return params, optimizer

    cuda_params, cuda_opt = run("cuda")
    cpu_params, cpu_opt = run("cpu")
    for a, b in zip(cuda_params, cpu_params):
        assert a.is_cuda
        if b.numel():
            assert relative_error(a.detach(), b.detach()) < 10 * TOL[dtype]
    if config.get("momentum"):
        for a, b in zip(cuda_params, cpu_params):
            if b.numel():
                assert relative_error(cuda_opt.state[a]["momentum_buffer"], cpu_opt.state[b]["momentum_buffer"]) \
                    < 10 * TOL[dtype]


def test_side_streams_give_the_default_streams_results():
    xs = [torch.randn(200_000 + i, device="cuda") for i in range(4)]
    expected = [laplacian_smooth(x, 1.0) for x in xs]
    streams = [torch.cuda.Stream() for _ in range(2)]
    outs = [None] * len(xs)
    torch.cuda.synchronize()
    for i, x in enumerate(xs):
        with torch.cuda.stream(streams[i % 2]):
            outs[i] = laplacian_smooth(x, 1.0, backend="fft" if i % 2 else "direct")
    torch.cuda.synchronize()
    for out, ref in zip(outs, expected):
        assert relative_error(out, ref) < 1e-5


@pytest.mark.parametrize("optimizer_class", [LSGD, MLSGD])
def test_training_steps_on_cuda(optimizer_class):
    def train(device):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(8 * 16 * 16, 10)).double().to(device)
        optimizer = optimizer_class(model.parameters(), lr=0.05, momentum=0.9)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(64, 1, 16, 16, generator=g, dtype=torch.float64).to(device)
        y = torch.randint(0, 10, (64,), generator=g).to(device)
        losses = []
        for _ in range(30):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        return losses, list(model.parameters())

    cuda_losses, cuda_params = train("cuda")
    cpu_losses, cpu_params = train("cpu")
    assert cuda_losses[-1] < 0.5 * cuda_losses[0]
    for a, b in zip(cuda_params, cpu_params):
        assert relative_error(a.detach(), b.detach()) < 1e-6


def test_extension_reports_its_cuda():
    assert torch_mlsgd._C.cuda_version, "the extension was built without CUDA kernels"
