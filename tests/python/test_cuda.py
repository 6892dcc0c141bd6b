"""The CUDA ops against independent float64 references (NumPy's FFT), the fused step
against the CPU's, streams, CUDA graphs, and training on a GPU. Skipped without CUDA.

Each test here is written to catch a fault the CUDA code could have: a kernel on the
wrong stream (inputs produced late on a side stream, with no synchronisation), plans or
work areas shared between streams, batched cuFFT plans (duplicate shapes), cuFFT reading
misaligned views, a wrong element at a chunk boundary (max-abs bounds beside relative
ones), and every order and warm-up the direct route takes."""

import functools

import pytest
import torch

import torch_mlsgd
from torch_mlsgd import LSGD, MLSGD, laplacian_smooth, laplacian_smooth_

from reference import fft_smooth
from stepping import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SIZES = [1, 2, 3, 100, 8224, 3 * 8224 + 17, 100_003, 1_000_003]
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def relative_error(a, b):
    a, b = torch.as_tensor(a).double().cpu(), torch.as_tensor(b).double().cpu()
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def assert_smoothed(out, expected, tol, what=""):
    """Relative L2 and max-abs error both within tol (one wrong element of a long ring
    barely moves the first, not the second)."""
    out, expected = torch.as_tensor(out).double().cpu(), torch.as_tensor(expected).double().cpu()
    scale = expected.abs().max().clamp_min(1e-300)
    assert relative_error(out, expected) < tol, what
    assert ((out - expected).abs().max() / scale).item() < tol, what


@functools.lru_cache(maxsize=None)
def case(n, order, sigma):
    """A random ring and its smoothing by NumPy's FFT in float64."""
    v = torch.randn(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    return v, torch.from_numpy(fft_smooth(v.numpy(), sigma, order))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_cuda_matches_a_float64_fft(dtype, backend):
    for n in SIZES:
        for order in (1, 2, 3):
            for sigma in (0.5, 1.0, 30.0, 1e4):
                v, expected = case(n, order, sigma)
                try:
                    out = laplacian_smooth(v.to("cuda", dtype), sigma, order, backend=backend)
                except RuntimeError as error:  # the direct route's shared-memory limit
                    assert backend == "direct" and "shared memory" in str(error)
                    continue
                assert out.is_cuda and out.dtype == dtype and out.shape == v.shape
                assert_smoothed(out, expected, TOL[dtype], (n, order, sigma))


def largest_direct_sigma(order, dtype, n=20_000):
    """The largest sigma on a doubling grid that the direct route takes on this GPU."""
    sigma = 1.0
    x = torch.zeros(n, device="cuda", dtype=dtype)
    while True:
        try:
            laplacian_smooth(x, sigma * 2, order, backend="direct")
        except RuntimeError as error:
            assert "shared memory" in str(error)
            return sigma
        sigma *= 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_direct_order_and_the_longest_warmups_on_cuda(dtype):
    for order in range(1, 9):
        for sigma in (1.0, largest_direct_sigma(order, dtype)):
            for n in (700, 2 * 8224 + 5, 100_003):
                v, expected = case(n, order, sigma)
                out = laplacian_smooth(v.to("cuda", dtype), sigma, order, backend="direct")
                assert_smoothed(out, expected, TOL[dtype], (order, sigma, n))
    with pytest.raises(RuntimeError, match="orders up to 8"):
        laplacian_smooth(torch.zeros(100, device="cuda", dtype=dtype), 1.0, 9, backend="direct")
    v, expected = case(5000, 9, 1.0)
    assert_smoothed(laplacian_smooth(v.to("cuda", dtype), 1.0, 9), expected, TOL[dtype])  # auto: cuFFT


@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_misaligned_views_on_cuda(backend):
    """x[1:] of a float tensor starts mid-pair: cuFFT must get an aligned copy."""
    base = torch.randn(100_001, device="cuda")
    for sigma in (1.0, 5000.0):
        expected = fft_smooth(base[1:].double().cpu().numpy(), sigma, 1)
        if backend == "direct" and sigma > largest_direct_sigma(1, torch.float32):
            continue
        assert_smoothed(laplacian_smooth(base[1:], sigma, backend=backend), expected, TOL[torch.float32])
        w = base.clone()
        laplacian_smooth_(w[1:], sigma, backend=backend)
        assert w[0].item() == base[0].item()
        assert_smoothed(w[1:], expected, TOL[torch.float32])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_half_precision_on_cuda_is_float32_rounded_once(dtype, backend):
    v = torch.randn(5000, device="cuda").to(dtype)
    expected = laplacian_smooth(v.float(), 1.0, backend=backend).to(dtype)
    out = laplacian_smooth(v, 1.0, backend=backend)
    assert out.dtype == dtype
    assert torch.equal(out, expected)


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
    dict(momentum=0.9, weight_decay=0.01, maximize=True, backend="fft"),
    dict(sigma=5000.0, momentum=0.8, dampening=0.2, weight_decay=0.01, maximize=True),
    dict(sigma=5000.0, momentum=0.9, nesterov=True, weight_decay=0.01, flatten="group"),
    dict(order=8, momentum=0.9, backend="direct"),
]
# Duplicate shapes: the FFT route batches rings of one length into one plan.
SHAPES = [(64, 3, 7, 7), (64,), (1,), (0,), (512, 300), (12_007,), (100,), (512, 300), (100,), (512, 300)]


def stepped(make_optimizer, shapes, dtype, device, seed, steps=3):
    """Parameters of `shapes` on `device` and their optimizer after `steps` steps on the
    optimizer tests' gradient field."""
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g).to(device, dtype).requires_grad_() for s in shapes]
    optimizer = make_optimizer(params)
    for _ in range(steps):
        for p in params:
            p.grad = torch.sin(3 * p.detach()) + 0.5 * p.detach()
        optimizer.step()
    return params, optimizer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_fused_step_on_cuda_matches_cpu(dtype, config):
    def make(params):
        return LSGD(params, lr=0.05, **{"sigma": 1.0, **config})

    cuda_params, cuda_opt = stepped(make, SHAPES, dtype, "cuda", 1)
    cpu_params, cpu_opt = stepped(make, SHAPES, dtype, "cpu", 1)
    for a, b in zip(cuda_params, cpu_params):
        assert a.is_cuda
        if b.numel():
            assert_smoothed(a.detach(), b.detach(), 10 * TOL[dtype])
    if config.get("momentum"):
        for a, b in zip(cuda_params, cpu_params):
            if b.numel():
                assert_smoothed(cuda_opt.state[a]["momentum_buffer"], cpu_opt.state[b]["momentum_buffer"],
                                10 * TOL[dtype])


# The single pass (direct route: the first three), smoothing then torch's _fused_adamw_
# (group ring, FFT route, sigma 0), and the unfused path.
ADAMW_CONFIGS = [dict(), dict(amsgrad=True, maximize=True), dict(backend="direct", weight_decay=0.1, order=2),
                 dict(flatten="group", backend="fft"), dict(sigma=5000.0), dict(sigma=0.0),
                 dict(fused=False, foreach=True)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("config", ADAMW_CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "plain")
def test_lsadamw_on_cuda_matches_cpu(dtype, config):
    """The CUDA kernel of mlsgd::lsadamw_step_ (float32/float64 on the direct route: one
    pass; otherwise smoothing, then torch's _fused_adamw_ per dtype; counts on the device)
    against the CPU's one-pass kernel, and the unfused path."""
    shapes = [s for s in SHAPES if len(s) < 4]

    def make(params):
        return torch_mlsgd.LSAdamW(params, lr=1e-2, eps=1e-3, **{"sigma": 1.0, **config})

    cuda_params, cuda_opt = stepped(make, shapes, dtype, "cuda", 2)
    cpu_params, cpu_opt = stepped(make, shapes, dtype, "cpu", 2)
    tol = {torch.float32: 1e-4, torch.float64: 1e-9, torch.bfloat16: 3e-2}[dtype]
    for a, b in zip(cuda_params, cpu_params):
        assert a.is_cuda and a.dtype == dtype
        if b.numel():
            assert_smoothed(a.detach(), b.detach(), tol)
            assert_smoothed(cuda_opt.state[a]["exp_avg"], cpu_opt.state[b]["exp_avg"], tol)
            assert float(cuda_opt.state[a]["step"]) == 3


@pytest.mark.parametrize("backend", ["auto", "fft", "direct"])
def test_gradients_at_odd_offsets_in_the_fused_step_on_cuda(backend):
    """Gradients that are views starting mid-pair (as bucket views of DDP or FSDP can)."""
    def run(device):
        g = torch.Generator().manual_seed(2)
        params = [torch.randn(n, generator=g).to(device).requires_grad_() for n in (5001, 777)]
        storage = torch.randn(5001 + 777 + 1, generator=g).to(device)
        params[0].grad, params[1].grad = storage[1:5002], storage[5002:]
        LSGD(params, lr=0.1, momentum=0.9, backend=backend).step()
        return params

    for a, b in zip(run("cuda"), run("cpu")):
        assert_smoothed(a.detach(), b.detach(), 10 * TOL[torch.float32])


def delayed_copy(source, stream):
    """source's copy, written on `stream` after ~10 ms of GPU sleep: a consumer on
    another stream that does not wait for `stream` reads it before it is written."""
    with torch.cuda.stream(stream):
        out = torch.full_like(source, float("nan"))
        torch.cuda._sleep(20_000_000)
        out.copy_(source)
    return out


@pytest.mark.parametrize("backend", ["fft", "direct"])
def test_inputs_produced_late_on_a_side_stream_on_cuda(backend):
    """The op runs on the current stream: inside a side stream's context it sees the
    side stream's writes without any synchronisation by the caller."""
    sources = [case(200_000, 1, 1.0)[0].float().cuda() for _ in range(2)]
    expected = case(200_000, 1, 1.0)[1]
    torch.cuda.synchronize()
    streams = [torch.cuda.Stream() for _ in sources]
    outs = []
    for source, stream in zip(sources, streams):
        x = delayed_copy(source, stream)
        with torch.cuda.stream(stream):
            outs.append(laplacian_smooth(x, 1.0, backend=backend))
    for stream in streams:
        torch.cuda.current_stream().wait_stream(stream)
    for out in outs:  # two transforms of one size ran on two streams at once
        assert_smoothed(out, expected, TOL[torch.float32])


@pytest.mark.parametrize("backend", ["fft", "direct"])
def test_fused_step_on_a_side_stream_with_late_gradients_on_cuda(backend):
    def run(device, stream=None):
        g = torch.Generator().manual_seed(3)
        params = [torch.randn(s, generator=g).to(device).requires_grad_() for s in [(300, 200), (300, 200), (5,)]]
        grads = [torch.sin(3 * p.detach()) for p in params]
        optimizer = LSGD(params, lr=0.1, momentum=0.9, backend=backend)
        for _ in range(2):
            if stream is None:
                for p, gr in zip(params, grads):
                    p.grad = gr.clone()
                optimizer.step()
            else:
                torch.cuda.synchronize()
                for p, gr in zip(params, grads):
                    p.grad = delayed_copy(gr, stream)
                with torch.cuda.stream(stream):
                    optimizer.step()
                torch.cuda.current_stream().wait_stream(stream)
        return params

    for a, b in zip(run("cuda", torch.cuda.Stream()), run("cpu")):
        assert_smoothed(a.detach(), b.detach(), 10 * TOL[torch.float32])


@pytest.mark.parametrize("backend", ["fft", "direct"])
def test_fused_lsgd_step_replays_from_a_cuda_graph(backend):
    """The step captured once and replayed equals the same steps run eagerly."""
    def model(device):
        g = torch.Generator().manual_seed(4)
        params = [torch.randn(s, generator=g).to(device).requires_grad_() for s in [(256, 128), (256, 128), (77,)]]
        return params, LSGD(params, lr=0.05, momentum=0.9, weight_decay=0.01, backend=backend, fused=True)

    def set_grads(params):
        for p in params:
            p.grad = torch.cos(2 * p.detach())

    eager, eager_opt = model("cuda")
    captured, captured_opt = model("cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture: buffers and plans exist
        set_grads(captured)
        captured_opt.step()
    torch.cuda.current_stream().wait_stream(side)
    set_grads(eager)
    eager_opt.step()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        set_grads(captured)
        captured_opt.step()
    for _ in range(3):
        graph.replay()
        set_grads(eager)
        eager_opt.step()
    torch.cuda.synchronize()
    for a, b in zip(captured, eager):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("make", [
    lambda ps: LSGD(ps, lr=0.05, momentum=0.9, backend="direct", fused=True),
    lambda ps: LSGD(ps, lr=0.05, momentum=0.9, nesterov=True, backend="fft", fused=True),
    lambda ps: LSGD(ps, lr=0.05, momentum=0.9, flatten="group", fused=True),
    lambda ps: torch_mlsgd.LSAdamW(ps, lr=1e-2, fused=True),
], ids=["direct", "fft-nesterov", "group", "lsadamw"])
def test_grad_scaler_steps_on_cuda_without_host_syncs(make):
    """GradScaler hands the fused CUDA step (fused=True) grad_scale and found_inf: the scaled run
    equals the unscaled one bit for bit (a power-of-two scale), a step with a NaN
    changes nothing, and no step reads anything on the host."""
    def model():
        g = torch.Generator().manual_seed(5)
        return [torch.randn(s, generator=g).cuda().requires_grad_() for s in [(256, 128), (100_003,), (77,)]]

    scaled, plain = model(), model()
    scaled_opt, plain_opt = make(scaled), make(plain)
    assert scaled_opt._step_supports_amp_scaling
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**12)
    for step in range(5):
        poison = step == 2
        for p in scaled:
            p.grad = torch.cos(2 * p.detach()) * scaler.get_scale()
        if poison:
            scaled[0].grad[0, 0] = float("nan")
        before = [p.detach().clone() for p in scaled]
        torch.cuda.synchronize()
        if step > 0:  # the first step creates the state (and cuFFT's plans)
            torch.cuda.set_sync_debug_mode("error")
        try:
            scaler.step(scaled_opt)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        scaler.update()
        if poison:
            assert all(torch.equal(p, b) for p, b in zip(scaled, before))
        else:
            for p in plain:
                p.grad = torch.cos(2 * p.detach())
            plain_opt.step()
        for a, b in zip(scaled, plain):
            assert torch.equal(a, b), step


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
        losses = fit(model, optimizer, torch.nn.functional.cross_entropy, x, y, 30)
        return losses, list(model.parameters())

    cuda_losses, cuda_params = train("cuda")
    cpu_losses, cpu_params = train("cpu")
    assert cuda_losses[-1] < 0.5 * cuda_losses[0]
    for a, b in zip(cuda_params, cpu_params):
        assert relative_error(a.detach(), b.detach()) < 1e-6


def test_extension_reports_its_cuda():
    assert torch_mlsgd._C.cuda_version, "the extension was built without CUDA kernels"
