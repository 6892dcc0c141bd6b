"""Peak extra memory of optimizer steps: bytes beyond parameters, gradients and momentum buffers.

    python3 benchmarks/bench_memory.py

Each optimizer runs in a fresh process: it allocates and touches parameters
and gradients, resets the kernel's peak-RSS counter (/proc/self/clear_refs),
takes two steps (the first creates the momentum buffers), and reads the peak
(VmHWM). Extra = peak - resident before the steps - momentum buffer bytes.
That counts every temporary and every cache or scratch the step keeps,
whichever allocator made it; the resolution is a few pages.
"""

import json
import os
import subprocess
import sys

from common import print_table

HERE = os.path.dirname(os.path.abspath(__file__))


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(model, optimizer_name, threads):
    sys.path.insert(0, HERE)
    import torch
    from bench_step import ReferenceLSSGD, make_params

    import torch_mlsgd

    import model_shapes

    torch.set_num_threads(threads)
    shapes = getattr(model_shapes, model)()
    params = make_params(shapes)
    kwargs = dict(lr=1e-6, momentum=0.9)
    optimizer = {
        "SGD": lambda: torch.optim.SGD(params, foreach=False, **kwargs),
        "SGD foreach": lambda: torch.optim.SGD(params, foreach=True, **kwargs),
        "LSGD (fused)": lambda: torch_mlsgd.LSGD(params, sigma=1.0, **kwargs),
        "LSGD fused=False": lambda: torch_mlsgd.LSGD(params, sigma=1.0, fused=False, **kwargs),
        "LSGD flatten=group": lambda: torch_mlsgd.LSGD(params, sigma=1.0, flatten="group", **kwargs),
        "reference LS-SGD": lambda: ReferenceLSSGD(params, 1e-6, 1.0, 0.9),
    }[optimizer_name]()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS") * 1024
    optimizer.step()
    optimizer.step()
    peak = _status_kib("VmHWM") * 1024
    buffers = sum(p.numel() * p.element_size() for p in params)
    largest = max(p.numel() * p.element_size() for p in params)
    print(json.dumps({"extra": peak - before - buffers, "largest": largest}))


def measure(model, optimizer_name, threads=1):
    out = subprocess.run([sys.executable, __file__, "--worker", model, optimizer_name, str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    """Prints the table; returns {(model, optimizer): {"extra": bytes, "largest": bytes}}."""
    rows, results = [], {}
    for model, label in (("resnet18", "ResNet-18"), ("gpt2_small", "GPT-2 small")):
        for name in ("SGD", "SGD foreach", "LSGD (fused)", "LSGD fused=False", "LSGD flatten=group",
                     "reference LS-SGD"):
            if name == "reference LS-SGD" and model != "resnet18":
                continue
            r = measure(model, name)
            results[(label, name)] = r
            rows.append([label, name, f"{r['extra'] / 2**20:.1f}", f"{r['largest'] / 2**20:.1f}",
                         f"{r['extra'] / r['largest']:.2f}"])
    print_table("Peak extra memory of a step (MiB beyond params, grads and momentum buffers; 1 thread)",
                ["model", "optimizer", "extra MiB", "largest grad MiB", "extra / largest grad"], rows)
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
