"""The benchmark suite: every table, measured side by side in one run, then the targets.

    python3 benchmarks/run.py [--quick]      (`make bench` runs it without --quick)

Times are medians of at least 5 repetitions after a warm-up, with the compared
functions timed in alternation; ratios are taken within one run.
"""

import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import command_line, print_table  # noqa: E402

import bench_memory  # noqa: E402
import bench_smoothing  # noqa: E402
import bench_step  # noqa: E402
import torch  # noqa: E402

import torch_mlsgd  # noqa: E402


def describe_machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
            f"Python {platform.python_version()}, torch_mlsgd {torch_mlsgd.__version__} "
            f"({torch_mlsgd.cpu_kernels()} CPU kernels)")


def check_targets(smoothing, steps, memory):
    rows = []

    def row(target, measured, ok):
        rows.append([target, measured, "PASS" if ok else "FAIL"])

    for r in smoothing:
        if r["n"] == 10**7 and r["dtype"] == torch.float32:
            need = 40.0 if r["order"] == 1 else 8.0
            speedup = r["naive"] / r["auto"]
            row(f"op vs naive, order {r['order']}, n=1e7, float32, {r['threads']} thread(s): >= {need:g}x",
                f"{speedup:.1f}x", speedup >= need)
    for (model, threads), times in steps.items():
        # Against the fastest SGD this torch has (fused=True on torch >= 2.4).
        need = 1.2 if model == "LeNet-5" else 1.0
        ratio = times["LSGD (fused)"] / bench_step.best_sgd(times)
        row(f"LSGD step / fastest SGD step, {model}, {threads} thread(s): <= {need:g}x", f"{ratio:.2f}x",
            ratio <= need)
    for (model, name), r in memory.items():
        if name in ("LSGD (fused)", "LSGD flatten=group"):
            ok = r["extra"] <= r["largest"]
            row(f"extra memory of a step, {model}, {name}: <= largest gradient",
                f"{r['extra'] / 2**20:.1f} MiB of {r['largest'] / 2**20:.1f} MiB", ok)
    print_table("Targets", ["target", "measured", ""], rows)
    return all(r[2] == "PASS" for r in rows)


def main() -> int:
    args = command_line(__doc__, quick="fewer sizes, ResNet-18 only").parse_args()
    quick = ["--quick"] if args.quick else []
    print(f"# torch_mlsgd benchmarks\n\nMachine: {describe_machine()}")
    smoothing = bench_smoothing.main(quick)
    steps = bench_step.main(quick)
    memory = bench_memory.main()
    ok = check_targets(smoothing, steps, memory)
    print("\nAll targets hold." if ok else "\nSome targets do not hold (see FAIL above).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
