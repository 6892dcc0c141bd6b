"""Audits a built torch_mlsgd wheel before it is installed anywhere:

- its name carries the abi3 and manylinux tags (one file for every Python and Linux);
- it holds the CPU library and, unless --no-cuda, the CUDA library;
- torch-abi-audit finds every compiled library on torch's stable ABI and CPython's
  limited API, with a minimum torch no later than the supported floor.

    python tools/audit_wheel.py dist/torch_mlsgd-*.whl --floor 2.11.0

Exits 1 naming what failed. `make audit` (and so `make test`) runs it.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile


def release(version):
    return tuple(int(p) for p in re.findall(r"[0-9]+", version)[:3])


def audit(wheel, floor, cuda):
    problems = []
    name = os.path.basename(wheel)
    if not re.fullmatch(r"torch_mlsgd-[0-9.]+-cp3[0-9]+-abi3-manylinux_[0-9]+_[0-9]+_x86_64\.whl", name):
        problems.append(f"{name}: expected a cp3X-abi3-manylinux_*_x86_64 wheel")
    with zipfile.ZipFile(wheel) as z:
        libraries = sorted(n for n in z.namelist() if n.endswith(".so") or ".so." in n)
    expected = ["torch_mlsgd/_C.abi3.so"] + (["torch_mlsgd/_C_cuda.abi3.so"] if cuda else [])
    for library in expected:
        if library not in libraries:
            problems.append(f"{name} holds no {library} (it holds {libraries})")
    bundled = [n for n in libraries if n not in expected]
    if bundled:
        problems.append(f"{name} bundles other libraries (torch's and CUDA's must come from their wheels): {bundled}")

    work = tempfile.mkdtemp(prefix="audit-wheel-")
    try:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(work)
        audit_tool = os.path.join(os.path.dirname(sys.executable), "torch-abi-audit")
        out = subprocess.run([audit_tool, "--json", os.path.join(work, "torch_mlsgd")], capture_output=True,
                             text=True)
        if out.returncode not in (0, 1):
            problems.append(f"torch-abi-audit failed: {out.stderr.strip()}")
            return problems
        report = json.loads(out.stdout)
    finally:
        shutil.rmtree(work)
    # The Python module is an "extension" to the tool; the CUDA library, which has no
    # module init (torch.ops.load_library loads it), a "bundled lib" that must use no
    # CPython API at all.
    audited = []
    for kind in ("extensions", "bundled_libs"):
        for entry in report[kind]:
            path = os.path.basename(entry["path"])
            audited.append("torch_mlsgd/" + path)
            torch_abi, cpython = entry["torch"], entry["cpython"]
            if not torch_abi["stable"] or torch_abi["unstable_symbols"]:
                problems.append(f"{path}: not on torch's stable ABI; unstable symbols: {torch_abi['unstable_symbols']}")
            if cpython["violations"] or (kind == "extensions" and not cpython["compliant"]):
                problems.append(f"{path}: not abi3-compliant: {cpython['violations']}")
            minimum = torch_abi["min_torch_version"] or "0"
            if release(minimum) > release(floor):
                problems.append(f"{path}: needs torch {minimum}, later than the supported floor {floor}")
            print(f"{path}: stable ABI, min torch {minimum}, {torch_abi['stable_shim_count']} stable shim symbols, "
                  f"{'abi3 module' if kind == 'extensions' else 'no CPython API'}")
    for library in expected:
        if library not in audited:
            problems.append(f"torch-abi-audit did not inspect {library}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel")
    parser.add_argument("--floor", required=True, help="the oldest supported torch, e.g. 2.11.0")
    parser.add_argument("--no-cuda", action="store_true", help="the wheel was built without CUDA kernels")
    args = parser.parse_args()
    problems = audit(args.wheel, args.floor, cuda=not args.no_cuda)
    for problem in problems:
        print("audit_wheel: " + problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{os.path.basename(args.wheel)}: audited (floor torch {args.floor})")


if __name__ == "__main__":
    main()
