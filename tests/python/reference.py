"""Independent float64 NumPy references for the smoothing operator, LSGD and LSAdamW, and a
pure-Python reimplementation of MLSGD's sigma schedules."""

import math

import numpy as np


def symbol(n: int, sigma: float, order: int) -> np.ndarray:
    k = np.arange(n)
    return 1.0 + sigma * (4.0 * np.sin(np.pi * k / n) ** 2) ** order


def fft_smooth(v, sigma: float, order: int) -> np.ndarray:
    """S(v) through NumPy's complex FFT of the whole spectrum."""
    flat = np.asarray(v, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return flat
    return np.fft.ifft(np.fft.fft(flat) / symbol(flat.size, sigma, order)).real


def dense_operator(n: int, sigma: float, order: int) -> np.ndarray:
    """A = I + sigma (-L)^order, L the periodic 1-D Laplacian, as a dense matrix."""
    minus_laplacian = np.zeros((n, n))
    for i in range(n):
        minus_laplacian[i, i] += 2.0
        minus_laplacian[i, (i - 1) % n] -= 1.0
        minus_laplacian[i, (i + 1) % n] -= 1.0
    return np.eye(n) + sigma * np.linalg.matrix_power(minus_laplacian, order)


def dense_smooth(v, sigma: float, order: int) -> np.ndarray:
    flat = np.asarray(v, dtype=np.float64).reshape(-1)
    return np.linalg.solve(dense_operator(flat.size, sigma, order), flat)


def relative_error(actual, expected) -> float:
    a = np.asarray(actual, dtype=np.float64).reshape(-1)
    e = np.asarray(expected, dtype=np.float64).reshape(-1)
    scale = np.linalg.norm(e)
    diff = np.linalg.norm(a - e)
    return diff / scale if scale > 0 else diff


def smoothed_gradients(grads, sigma, order, maximize, flatten):
    """The indices of the gradients that are not None, and their smoothing (negated
    when maximizing), per tensor or over the concatenated ring."""
    live = [i for i, g in enumerate(grads) if g is not None]
    gs = [(-1.0 if maximize else 1.0) * np.asarray(grads[i], dtype=np.float64) for i in live]
    if flatten == "group" and gs:
        ring = fft_smooth(np.concatenate([g.reshape(-1) for g in gs]), sigma, order)
        smoothed, offset = [], 0
        for g in gs:
            smoothed.append(ring[offset:offset + g.size].reshape(g.shape))
            offset += g.size
        return live, smoothed
    return live, [fft_smooth(g, sigma, order).reshape(g.shape) for g in gs]


class ReferenceLSGD:
    """docs/design.md §3, written out in float64 NumPy, one group."""

    def __init__(self, params, lr, sigma=1.0, order=1, momentum=0.0, dampening=0.0,
                 weight_decay=0.0, nesterov=False, maximize=False, flatten="tensor"):
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.buffers = [None] * len(self.params)
        self.h = dict(lr=lr, sigma=sigma, order=order, momentum=momentum, dampening=dampening,
                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                      flatten=flatten)

    def step(self, grads):
        """grads: list with None for parameters without gradient."""
        h = self.h
        live, smoothed = smoothed_gradients(grads, h["sigma"], h["order"], h["maximize"], h["flatten"])
        for i, s in zip(live, smoothed):
            d = s + h["weight_decay"] * self.params[i]
            if h["momentum"] != 0:
                if self.buffers[i] is None:
                    self.buffers[i] = d.copy()
                else:
                    self.buffers[i] = h["momentum"] * self.buffers[i] + (1 - h["dampening"]) * d
                d = d + h["momentum"] * self.buffers[i] if h["nesterov"] else self.buffers[i]
            self.params[i] = self.params[i] - h["lr"] * d


class ReferenceLSAdamW:
    """docs/design.md §3b, written out in float64 NumPy, one group."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, sigma=1.0,
                 order=1, maximize=False, flatten="tensor"):
        self.params = [np.array(p, dtype=np.float64) for p in params]
        self.moments = [(np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)) for p in self.params]
        self.steps = [0] * len(self.params)
        self.h = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, sigma=sigma,
                      order=order, maximize=maximize, flatten=flatten)

    def step(self, grads):
        h = self.h
        beta1, beta2 = h["betas"]
        live, smoothed = smoothed_gradients(grads, h["sigma"], h["order"], h["maximize"], h["flatten"])
        for i, s in zip(live, smoothed):
            self.steps[i] += 1
            t = self.steps[i]
            m, v, vmax = self.moments[i]
            m = beta1 * m + (1 - beta1) * s
            v = beta2 * v + (1 - beta2) * s * s
            vmax = np.maximum(vmax, v)
            self.moments[i] = (m, v, vmax)
            second = vmax if h["amsgrad"] else v
            p = self.params[i] * (1 - h["lr"] * h["weight_decay"])
            denom = np.sqrt(second) / math.sqrt(1 - beta2 ** t) + h["eps"]
            self.params[i] = p - h["lr"] / (1 - beta1 ** t) * m / denom


_MASK64 = (1 << 64) - 1


def splitmix64_uniform(seed: int, step: int) -> float:
    """MLSGD's draw u_k in [0, 1) for (seed, k = step), in pure Python integers.

    Written from the generator's definition (csrc/core/sigma_schedule.h: "splitmix64 of
    their mix"), not from the library: the 64-bit word seed * 0x9E3779B97F4A7C15 + step +
    0x632BE59BD9B4E019 (mod 2**64) goes through splitmix64's output function (Steele, Lea,
    Flood 2014: xor-shift 30, multiply, xor-shift 27, multiply, xor-shift 31), and its top
    53 bits, over 2**53, are the draw.
    """
    z = (seed * 0x9E3779B97F4A7C15 + step + 0x632BE59BD9B4E019) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z >> 11) / 2.0 ** 53


def reference_sigma(step: int, schedule: str = "random", sigma: float = 1.0, sigma_min: float = 0.0,
                    sigma_max=None, period: int = 100, seed: int = 0) -> float:
    """sigma_k of MLSGD's schedules as docs/api.md's table defines them."""
    top = 2.0 * sigma if sigma_max is None else sigma_max
    if schedule == "random":
        return sigma_min + (top - sigma_min) * splitmix64_uniform(seed, step)
    if schedule == "cyclic":
        return sigma_min + (top - sigma_min) * ((step % period) / (period - 1) if period > 1 else 0.0)
    if schedule == "decay":
        return sigma / (1.0 + step / period)
    if schedule == "growth":
        return sigma * (1.0 + step / period)
    assert schedule == "constant", schedule
    return sigma
