"""The CUDA benchmarks: run on a machine with a CUDA GPU (tools/gpu_check.sh runs --quick).

    python3 benchmarks/bench_cuda.py [--quick] [--json PATH]

1. the smoothing op (backend "auto", and each route) against the naive formulation,
   torch.fft.irfft(torch.fft.rfft(v) / d), on the GPU;
2. the LSGD and MLSGD steps against torch.optim.SGD(momentum=0.9), and the LSAdamW step
   against torch.optim.AdamW, fused and foreach, on ResNet-50 and GPT-2 (small) shapes;
3. the bandwidth the direct route achieves at n = 1e8 against a device-to-device copy.
Each time is the median of repetitions timed in alternation, after a warm-up, with the GPU
synchronised around every call. The targets at the end print PASS or FAIL; --json writes
every measured number.
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import command_line, interleaved_medians, print_table  # noqa: E402

import torch  # noqa: E402

import torch_mlsgd  # noqa: E402

import model_shapes  # noqa: E402


def cuda_medians(fns, repeats=11, warmup=2):
    return interleaved_medians(fns, repeats=repeats, warmup=warmup, sync=torch.cuda.synchronize)


def bench_op(sizes, orders):
    rows, results = [], []
    for order in orders:
        for n in sizes:
            v = torch.randn(n, device="cuda")
            k = torch.arange(n // 2 + 1, device="cuda", dtype=torch.float64)
            d = (1 + (4 * torch.sin(math.pi * k / n) ** 2) ** order).float()
            fns = [lambda: torch.fft.irfft(torch.fft.rfft(v) / d, n)] + [
                (lambda b=b: torch_mlsgd.laplacian_smooth(v, 1.0, order, backend=b)) for b in ("auto", "direct", "fft")]
            naive, auto, direct, fft = cuda_medians(fns)
            results.append(dict(order=order, n=n, naive=naive, auto=auto, direct=direct, fft=fft))
            rows.append([order, f"1e{round(math.log10(n))}", f"{naive * 1e3:.3f}", f"{auto * 1e3:.3f}",
                         f"{naive / auto:.1f}x", f"{naive / direct:.1f}x", f"{naive / fft:.1f}x"])
    print_table("CUDA smoothing op vs naive torch.fft (float32, sigma 1; median ms; speed-up = naive / op)",
                ["order", "n", "naive ms", "auto ms", "auto", "direct", "fft"], rows)
    return results


def bench_step(model, shapes, repeats):
    def params():
        g = torch.Generator(device="cuda").manual_seed(0)
        out = []
        for s in shapes:
            p = torch.randn(s, device="cuda", generator=g).mul_(0.01).requires_grad_()
            p.grad = torch.randn(s, device="cuda", generator=g)
            out.append(p)
        return out

    optimizers = {
        "SGD fused=True": torch.optim.SGD(params(), lr=1e-6, momentum=0.9, fused=True),
        "SGD foreach=True": torch.optim.SGD(params(), lr=1e-6, momentum=0.9, foreach=True),
        "LSGD (fused)": torch_mlsgd.LSGD(params(), lr=1e-6, sigma=1.0, momentum=0.9),
        "MLSGD (fused)": torch_mlsgd.MLSGD(params(), lr=1e-6, sigma=1.0, momentum=0.9),
        "LSGD fused=False": torch_mlsgd.LSGD(params(), lr=1e-6, sigma=1.0, momentum=0.9, fused=False),
        "AdamW fused=True": torch.optim.AdamW(params(), lr=1e-6, fused=True),
        "AdamW foreach=True": torch.optim.AdamW(params(), lr=1e-6, foreach=True),
        "LSAdamW (fused)": torch_mlsgd.LSAdamW(params(), lr=1e-6, sigma=1.0),
    }
    names = list(optimizers)
    times = dict(zip(names, cuda_medians([optimizers[k].step for k in names], repeats=repeats)))
    rows = [[k, f"{times[k] * 1e3:.3f}", f"{times[k] / times['SGD fused=True']:.2f}",
             f"{times[k] / times['AdamW fused=True']:.2f}"] for k in names]
    print_table(f"Optimizer step on {model} shapes (CUDA, float32, SGD momentum 0.9, sigma 1; median ms)",
                ["optimizer", "ms / step", "/ fused SGD", "/ fused AdamW"], rows)
    return times


def bench_bandwidth(n):
    v = torch.randn(n, device="cuda")
    out = torch.empty_like(v)
    fns = [lambda: out.copy_(v), lambda: torch_mlsgd.laplacian_smooth(v, 1.0, backend="direct"),
           lambda: torch_mlsgd.laplacian_smooth(v, 1.0, backend="fft")]
    copy, direct, fft = cuda_medians(fns)
    moved = 2 * n * v.element_size()  # read once, write once
    rows = [["device-to-device copy", f"{copy * 1e3:.3f}", f"{moved / copy / 1e12:.2f}", "1.00"],
            ["direct route", f"{direct * 1e3:.3f}", f"{moved / direct / 1e12:.2f}", f"{copy / direct:.2f}"],
            ["FFT route", f"{fft * 1e3:.3f}", f"{moved / fft / 1e12:.2f}", f"{copy / fft:.2f}"]]
    print_table(f"Bandwidth at n = {n:.0e} float32 (bytes read + written once / time)",
                ["", "ms", "TB/s", "of copy's"], rows)
    return dict(copy=copy, direct=direct, fft=fft)


def main(argv=None):
    parser = command_line(__doc__, quick="fewer sizes and repetitions (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="write every measured number to PATH")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("bench_cuda.py: no CUDA device")
    print(f"# torch_mlsgd CUDA benchmarks\n\n{torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}, extension CUDA {torch_mlsgd._C.cuda_version}")
    sizes = [10**4, 10**6, 10**7] if args.quick else [10**4, 10**5, 10**6, 10**7, 10**8]
    op = bench_op(sizes, [1, 2, 3])
    repeats = 11 if args.quick else 21
    steps = {model: bench_step(model, shapes, repeats)
             for model, shapes in (("ResNet-50", model_shapes.resnet50()), ("GPT-2 small", model_shapes.gpt2_small()))}
    bandwidth = bench_bandwidth(10**8)
    targets = []
    for model, times in steps.items():
        fastest = min(times["SGD fused=True"], times["SGD foreach=True"])
        ratio = times["LSGD (fused)"] / fastest
        targets.append((f"LSGD step / fastest SGD step, {model}: <= 1.5x", f"{ratio:.2f}x", ratio <= 1.5))
        adamw = times["LSAdamW (fused)"] / min(times["AdamW fused=True"], times["AdamW foreach=True"])
        targets.append((f"LSAdamW step / fastest AdamW step, {model}: <= 1.1x", f"{adamw:.2f}x", adamw <= 1.1))
    share = bandwidth["copy"] / bandwidth["direct"]
    targets.append(("direct route at n=1e8 float32: >= 80 % of copy bandwidth", f"{100 * share:.0f} %", share >= 0.8))
    big = max(op, key=lambda r: (r["order"] == 1, r["n"]))
    speedup = big["naive"] / big["auto"]
    targets.append((f"auto vs naive, order 1, n={big['n']:.0e}: >= 5x", f"{speedup:.1f}x", speedup >= 5))
    print_table("Targets", ["target", "measured", ""],
                [[name, value, "PASS" if ok else "FAIL"] for name, value, ok in targets])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__, op=op, steps=steps,
                           bandwidth=bandwidth,
                           targets=[dict(target=t, measured=m, passed=ok) for t, m, ok in targets]),
                      f, indent=1)

if __name__ == "__main__":
    main()
