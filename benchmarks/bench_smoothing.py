"""The smoothing op against the naive reference formulation, side by side.

    python3 benchmarks/bench_smoothing.py [--quick]

Reference: torch.fft.irfft(torch.fft.rfft(v) / d, n) in Python with the
denominator d precomputed, as public LS-SGD code does it.
"""

import math

from common import command_line, interleaved_medians, print_table

import torch

import torch_mlsgd


def naive_denominator(n: int, sigma: float, order: int, dtype) -> torch.Tensor:
    k = torch.arange(n // 2 + 1, dtype=torch.float64)
    return (1 + sigma * (4 * torch.sin(math.pi * k / n) ** 2) ** order).to(dtype)


def run(sizes, orders, dtypes, threads_list, repeats):
    """Prints the table; returns one dict per row (times in seconds)."""
    rows, results = [], []
    for threads in threads_list:
        torch.set_num_threads(threads)
        for dtype in dtypes:
            for order in orders:
                for n in sizes:
                    v = torch.randn(n, dtype=dtype)
                    d = naive_denominator(n, 1.0, order, dtype)

                    def naive():
                        return torch.fft.irfft(torch.fft.rfft(v) / d, n)

                    fns = [naive] + [
                        (lambda b=b: torch_mlsgd.laplacian_smooth(v, 1.0, order, backend=b))
                        for b in ("auto", "direct", "fft")
                    ]
                    t_naive, t_auto, t_direct, t_fft = interleaved_medians(fns, repeats=repeats)
                    results.append(dict(threads=threads, dtype=dtype, order=order, n=n, naive=t_naive,
                                        auto=t_auto, direct=t_direct, fft=t_fft))
                    rows.append([threads, str(dtype).replace("torch.", ""), order, f"1e{round(math.log10(n))}",
                                 f"{t_naive * 1e3:.2f}", f"{t_auto * 1e3:.2f}", f"{t_naive / t_auto:.1f}x",
                                 f"{t_naive / t_direct:.1f}x", f"{t_naive / t_fft:.1f}x"])
    print_table(
        "Smoothing op vs naive torch.fft reference (sigma = 1; median ms; speed-up = naive / op)",
        ["threads", "dtype", "order", "n", "naive ms", "auto ms", "auto", "direct", "fft"],
        rows,
    )
    return results


def main(argv=None):
    args = command_line(__doc__, quick="fewer sizes and repeats").parse_args(argv)
    if args.quick:
        return run([10**3, 10**5, 10**7], [1, 2, 3], [torch.float32], [1, 2], repeats=5)
    return run([10**3, 10**4, 10**5, 10**6, 10**7], [1, 2, 3], [torch.float32, torch.float64], [1, 2], repeats=6)


if __name__ == "__main__":
    main()
