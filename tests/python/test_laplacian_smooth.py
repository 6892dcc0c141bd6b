"""torch_mlsgd.laplacian_smooth against float64 NumPy references, its properties and errors."""

import math

import numpy as np
import pytest
import torch

import torch_mlsgd
from torch_mlsgd import laplacian_smooth, laplacian_smooth_

from reference import dense_operator, dense_smooth, fft_smooth, relative_error

BACKENDS = ["fft", "direct", "auto"]
SIZES = [1, 2, 3, 4, 5, 7, 8, 16, 101, 4097, 65537]
SIGMAS = [0.0, 1e-3, 0.5, 1.0, 10.0, 300.0]
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_float64_references(backend, dtype):
    rng = np.random.default_rng(0)
    for n in SIZES:
        v = rng.standard_normal(n)
        for order in (1, 2, 3):
            for sigma in SIGMAS:
                expected = dense_smooth(v, sigma, order) if n <= 128 else fft_smooth(v, sigma, order)
                out = laplacian_smooth(torch.tensor(v, dtype=dtype), sigma, order, backend=backend)
                assert out.dtype == dtype and out.shape == (n,)
                err = relative_error(out.numpy(), expected)
                assert err < TOLERANCE[dtype], (n, order, sigma, err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_order_four_and_large_sigma(backend):
    rng = np.random.default_rng(1)
    for n in (3, 9, 1000):
        v = rng.standard_normal(n)
        for sigma, order in ((1.0, 4), (1e4, 1), (1e4, 2), (1e8, 1), (1e-12, 1)):
            err = relative_error(laplacian_smooth(torch.tensor(v), sigma, order, backend=backend).numpy(),
                                 fft_smooth(v, sigma, order))
            assert err < 1e-9, (n, sigma, order, err)


def test_direct_route_across_chunks_and_threads(threads):
    threads(2)
    rng = np.random.default_rng(2)
    v = rng.standard_normal(1_000_003)
    for sigma, order in ((1.0, 1), (30.0, 2), (1e3, 3)):
        expected = fft_smooth(v, sigma, order)
        assert relative_error(laplacian_smooth(torch.tensor(v), sigma, order, backend="direct").numpy(),
                              expected) < 1e-10
        out32 = laplacian_smooth(torch.tensor(v, dtype=torch.float32), sigma, order, backend="direct")
        assert relative_error(out32.numpy(), expected) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_properties(backend):
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 64, 999):
        u = torch.tensor(rng.standard_normal(n))
        v = torch.tensor(rng.standard_normal(n) + 3.0)
        for order in (1, 2, 3):
            for sigma in (0.3, 1.0, 50.0):
                sv = laplacian_smooth(v, sigma, order, backend=backend)
                su = laplacian_smooth(u, sigma, order, backend=backend)
                # mean kept, A S v = v, norm does not grow, S symmetric
                assert abs(sv.mean().item() - v.mean().item()) < 1e-12
                residual = dense_operator(n, sigma, order) @ sv.numpy() if n <= 64 else None
                if residual is not None:
                    assert relative_error(residual, v.numpy()) < 1e-11
                assert sv.norm() <= v.norm() * (1 + 1e-12)
                assert math.isclose(torch.dot(su, v).item(), torch.dot(u, sv).item(), rel_tol=1e-10,
                                    abs_tol=1e-10)


def test_noise_variance_shrinks_as_predicted():
    v = torch.randn(1 << 20, dtype=torch.float64)
    ratio = laplacian_smooth(v, 1.0).var() / v.var()
    assert abs(ratio.item() - 3.0 / 5.0 ** 1.5) < 3e-3  # (1 + 2s) / (1 + 4s)^(3/2) at s = 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigma_zero_is_exactly_the_identity(backend):
    v = torch.randn(3, 7)
    assert torch.equal(laplacian_smooth(v, 0.0, 3, backend=backend), v)


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_shape_flattened_row_major(backend):
    m = torch.randn(6, 9, dtype=torch.float64)
    expected = fft_smooth(m.numpy(), 2.0, 1).reshape(6, 9)
    transposed = m.t().contiguous().t()
    assert not transposed.is_contiguous()
    assert relative_error(laplacian_smooth(m, 2.0, backend=backend).numpy(), expected) < 1e-12
    assert relative_error(laplacian_smooth(transposed, 2.0, backend=backend).numpy(), expected) < 1e-12
    in_place = transposed.clone()
    laplacian_smooth_(in_place, 2.0, backend=backend)
    assert relative_error(in_place.numpy(), expected) < 1e-12
    assert laplacian_smooth(torch.tensor(3.5), 5.0).item() == 3.5
    assert laplacian_smooth(torch.empty(0, 4), 1.0).shape == (0, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_returns_input_and_matches(backend):
    for n in (1, 2, 5, 100_000):
        v = torch.randn(n)
        w = v.clone()
        assert laplacian_smooth_(w, 3.0, 2, backend=backend) is w
        torch.testing.assert_close(w, laplacian_smooth(v, 3.0, 2, backend=backend), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_computed_in_float32(dtype, backend):
    """float16/bfloat16 are computed in float32 and rounded once (docs/design.md §1): bit for
    bit the float32 result rounded, out of place and in place, where a recursion or FFT run
    in half precision would differ in many elements; and that float32 result is the
    float64 reference's to float32 accuracy."""
    rng = np.random.default_rng(5)
    for n, sigma, order in ((1000, 1.0, 1), (1000, 3.0, 2), (20_011, 300.0, 1), (777, 1e4, 3)):
        v = torch.tensor(rng.standard_normal(n)).to(dtype)
        out = laplacian_smooth(v, sigma, order, backend=backend)
        assert out.dtype == dtype
        in_float32 = laplacian_smooth(v.float(), sigma, order, backend=backend)
        assert torch.equal(out, in_float32.to(dtype)), (n, sigma, order)
        in_place = v.clone()
        laplacian_smooth_(in_place, sigma, order, backend=backend)
        assert torch.equal(in_place, out), (n, sigma, order)
        assert relative_error(in_float32.numpy(), fft_smooth(v.double().numpy(), sigma, order)) < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_high_orders_match_the_float64_reference(backend):
    """Orders 5 to 64 (the direct route's limit, docs/api.md) on every route against the float64
    FFT of the closed-form symbol, in float64 and float32, with errors relative to the
    input; the rings include n < 2p + 1, where a stencil-based symbol would wrap."""
    rng = np.random.default_rng(6)
    for order in (5, 8, 17, 33, 64):
        for n in (2, 3, 7, 40, 1000, 20_011):
            v = rng.standard_normal(n)
            for sigma in (1e-3, 1.0, 1e3):
                expected = fft_smooth(v, sigma, order)  # a dense solve loses cond(A) ~ sigma 4^p digits
                for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
                    out = laplacian_smooth(torch.tensor(v, dtype=dtype), sigma, order, backend=backend)
                    err = np.linalg.norm(out.double().numpy() - expected) / np.linalg.norm(v)
                    assert err < tol, (order, n, sigma, dtype, err)


def test_order_limits():
    """order >= 1 everywhere (ValueError from the Python API, RuntimeError from the op), at
    most 64 on the direct route (RuntimeError naming the limit); a refusal changes nothing.
    Beyond 64, "fft" and "auto" still smooth, as the float64 reference does."""
    v = torch.randn(300, dtype=torch.float64)
    original = v.clone()
    for backend in BACKENDS:
        with pytest.raises(ValueError, match="Invalid order value: 0"):
            laplacian_smooth_(v, 1.0, 0, backend=backend)
        with pytest.raises(RuntimeError, match="Invalid order value: -1"):
            torch.ops.mlsgd.laplacian_smooth_(v, 1.0, -1, backend)
    for call in (lambda: laplacian_smooth_(v, 1.0, 65, backend="direct"),
                 lambda: laplacian_smooth(v, 1.0, 65, backend="direct"),
                 lambda: torch.ops.mlsgd.laplacian_smooth_(v, 1.0, 65, "direct")):
        with pytest.raises(RuntimeError, match="the direct backend supports orders up to 64"):
            call()
    assert torch.equal(v, original)
    # The direct route's warm-up (the halo of sharded smoothing): -1 beyond its orders.
    assert torch.ops.mlsgd.direct_warmup(1.0, 64, torch.float64) > 0
    assert torch.ops.mlsgd.direct_warmup(1.0, 65, torch.float64) == -1
    for backend in ("fft", "auto"):
        for order in (65, 100):
            out = laplacian_smooth(v, 1.0, order, backend=backend)
            assert relative_error(out.numpy(), fft_smooth(v.numpy(), 1.0, order)) < 1e-12


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_float8_is_computed_in_float32_and_rounded_once(dtype):
    v = torch.randn(1000).to(dtype)
    out = laplacian_smooth(v, 1.0, backend="direct")
    assert out.dtype == dtype
    # Float32-then-round, bit for bit.
    expected = laplacian_smooth(v.float(), 1.0, backend="direct").to(dtype)
    assert torch.equal(out.view(torch.uint8), expected.view(torch.uint8))


def test_autograd_backward_is_the_smoothing():
    x = torch.randn(4, 25, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: laplacian_smooth(t, 2.0, 2), (x,))
    weight = torch.randn(4, 25, dtype=torch.float64)
    (laplacian_smooth(x, 2.0, 2) * weight).sum().backward()
    assert relative_error(x.grad.numpy(), fft_smooth(weight.numpy(), 2.0, 2)) < 1e-12


def test_registered_with_the_dispatcher():
    v = torch.randn(50, dtype=torch.float64)
    torch.testing.assert_close(torch.ops.mlsgd.laplacian_smooth(v, 1.0, 1, "direct"), laplacian_smooth(v, 1.0))
    w = v.clone()
    # The in-place op returns nothing (torch.compile takes no custom op whose output
    # aliases an input); the Python and C++ wrappers return their argument.
    assert torch.ops.mlsgd.laplacian_smooth_(w, 1.0) is None
    torch.testing.assert_close(w, laplacian_smooth(v, 1.0))


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(sigma=-1.0), ValueError, "Invalid sigma value: -1"),
        (dict(sigma=float("nan")), ValueError, "Invalid sigma value: nan"),
        (dict(sigma=float("inf")), ValueError, "Invalid sigma value: inf"),
        (dict(sigma=1.0, order=0), ValueError, "Invalid order value: 0"),
        (dict(sigma=1.0, backend="cufft"), ValueError, "'cufft'"),
        (dict(sigma="1"), TypeError, "sigma must be a real number"),
        (dict(sigma=1.0, order=1.5), TypeError, "order must be an integer"),
    ],
)
def test_bad_arguments_raise_and_change_nothing(kwargs, error, words):
    v = torch.randn(10)
    original = v.clone()
    with pytest.raises(error, match=words):
        laplacian_smooth_(v, **kwargs)
    assert torch.equal(v, original)


@pytest.mark.parametrize(
    "tensor, words",
    [
        (torch.arange(5), "floating-point"),
        (torch.randn(5, dtype=torch.complex64), "complex"),
        (torch.randn(5).to_sparse(), "sparse"),
    ],
)
def test_bad_tensors_raise(tensor, words):
    with pytest.raises(TypeError, match=words):
        laplacian_smooth(tensor, 1.0)


def test_in_place_on_tensor_requiring_grad_is_refused():
    leaf = torch.randn(5, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        laplacian_smooth_(leaf, 1.0)
    with torch.no_grad():
        laplacian_smooth_(leaf, 1.0)


def test_package_exports():
    assert set(torch_mlsgd.BACKENDS) == {"auto", "fft", "direct"}
    assert callable(torch_mlsgd.LSGD)
