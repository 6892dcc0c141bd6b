"""The CUDA step is capture-safe by construction, checked here without a GPU: the kernel
layer and the CUDA glue call only CUDA runtime functions that neither copy from host
memory nor synchronise (the allowed set below; a new call fails this test until it is
reviewed), and read no tensor on the host. The CUDA tests replay a captured step and run
GradScaler steps under torch.cuda.set_sync_debug_mode("error") where a GPU is present."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
CUDA_SOURCES = sorted([*ROOT.glob("csrc/cuda/**/*.cu"), *ROOT.glob("csrc/cuda/**/*.h"),
                       *ROOT.glob("csrc/ops/cuda/*.cpp"), *ROOT.glob("csrc/ops/cuda/*.h")])

# Runtime calls the step may make inside a capture: error queries, the current device,
# the capture status, a kernel attribute, the shared-memory limit (read once per device).
ALLOWED_RUNTIME = {"cudaGetLastError", "cudaGetErrorString", "cudaGetDevice", "cudaStreamIsCapturing",
                   "cudaFuncSetAttribute", "cudaDeviceGetAttribute"}
# cuFFT: plans are made outside a capture (the warm-up step) and only run inside one;
# cufftDestroy is skipped while capturing (fft.cu).
ALLOWED_CUFFT = {"cufftCreate", "cufftDestroy", "cufftSetAutoAllocation", "cufftSetStream", "cufftSetWorkArea",
                 "cufftMakePlanMany64", "cufftExecD2Z", "cufftExecZ2D", "cufftExecR2C", "cufftExecC2R"}
# Host reads of tensors (a device-to-host copy and a synchronisation for CUDA tensors).
HOST_READS = re.compile(r"\b(host_as|host_values|step_value)\s*\(|\.item\s*<|\bcpu\s*\(")


def _without_comments(text):
    """C++ text without its comments (which name functions the code does not call)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _code(path):
    return _without_comments(path.read_text())


def test_there_are_cuda_sources_to_check():
    names = {p.name for p in CUDA_SOURCES}
    assert {"direct.cu", "fft.cu", "lsgd_step_cuda.cpp", "lsadamw_step_cuda.cpp", "cuda_glue.h"} <= names


def test_cuda_code_makes_only_capture_safe_runtime_calls():
    found = {}
    for path in CUDA_SOURCES:
        for name in re.findall(r"\b(cuda[A-Z]\w*|cufft[A-Z]\w*)\s*\(", _code(path)):
            found.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    unexpected = {name: where for name, where in found.items() if name not in ALLOWED_RUNTIME | ALLOWED_CUFFT}
    assert not unexpected, f"CUDA calls to review for capture safety (host copies, syncs, allocations): {unexpected}"
    assert "cudaStreamIsCapturing" in found  # fft.cu keeps plans alive while capturing


def test_cuda_code_reads_no_tensor_on_the_host():
    offenders = [p.relative_to(ROOT).as_posix() for p in CUDA_SOURCES if HOST_READS.search(_code(p))]
    assert not offenders, offenders


def test_the_checks_catch_what_they_look_for():
    assert HOST_READS.search("double x = host_values(lr, 1, \"lr\")[0];")
    assert HOST_READS.search("auto v = t.item<float>();")
    assert re.findall(r"\b(cuda[A-Z]\w*|cufft[A-Z]\w*)\s*\(", "cudaMemcpy(dst, src, n, kind);") == ["cudaMemcpy"]
    assert _without_comments("f(); // cudaMemcpy(a)\n/* cudaDeviceSynchronize() */ g();") == "f(); \n g();"
