"""Where the FFT route beats the direct route: the data behind backend="auto".

    python3 benchmarks/bench_backends.py

For rings of n elements and a sigma large enough that the direct route's
warm-up is long (the one case where the FFT can win), times both routes and
prints what "auto" picked. The cost model in csrc/ops/cpu/choose_backend.cpp
should pick the faster route wherever the two differ by more than noise.
"""

from common import interleaved_medians, print_table

import torch

import torch_mlsgd


def picked(v, sigma, order):
    """Which route auto took, read from the results (each route is deterministic)."""
    auto = torch_mlsgd.laplacian_smooth(v, sigma, order)
    if torch.equal(auto, torch_mlsgd.laplacian_smooth(v, sigma, order, backend="direct")):
        return "direct"
    if torch.equal(auto, torch_mlsgd.laplacian_smooth(v, sigma, order, backend="fft")):
        return "fft"
    return "?"


def main():
    torch.set_num_threads(1)
    rows = []
    wrong = 0
    for dtype in (torch.float32, torch.float64):
        for order in (1, 2, 3):
            for sigma in (1.0, 100.0, 1e4, 1e6):
                for n in (100, 1000, 10_000, 100_000):
                    v = torch.randn(n, dtype=dtype)
                    t_direct, t_fft = interleaved_medians(
                        [lambda: torch_mlsgd.laplacian_smooth(v, sigma, order, backend="direct"),
                         lambda: torch_mlsgd.laplacian_smooth(v, sigma, order, backend="fft")],
                        repeats=7)
                    faster = "direct" if t_direct <= t_fft else "fft"
                    choice = picked(v, sigma, order)
                    # Only a choice that costs more than 30 % counts as wrong.
                    slow = (t_fft if choice == "fft" else t_direct) > 1.3 * min(t_direct, t_fft)
                    wrong += slow
                    rows.append([str(dtype).replace("torch.", ""), order, f"{sigma:g}", n,
                                 f"{t_direct * 1e6:.0f}", f"{t_fft * 1e6:.0f}", faster, choice,
                                 "SLOWER" if slow else ""])
    print_table("direct vs fft route (1 thread, median microseconds) and auto's choice",
                ["dtype", "order", "sigma", "n", "direct us", "fft us", "faster", "auto", ""], rows)
    print(f"\nauto chose a route more than 30 % slower in {wrong} of {len(rows)} cases")


if __name__ == "__main__":
    main()
