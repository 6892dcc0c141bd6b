"""The benchmark suite: every table, measured side by side in one process.

    python3 benchmarks/run.py [--quick]      (what `make bench` runs)
"""

import argparse
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import bench_smoothing  # noqa: E402


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
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    args = parser.parse_args()
    print(f"# torch_mlsgd benchmarks\n\nMachine: {describe_machine()}")
    bench_smoothing.main(["--quick"] if args.quick else [])


if __name__ == "__main__":
    main()
