#!/usr/bin/env bash
# The prepared GPU check (issue 4): on a machine with a CUDA GPU and a CUDA
# torch, build the extension and the CUDA kernel tests against that torch, run
# them and the CUDA pytest cases, then the CUDA benchmarks. Logs go to
# $OUT (default ./gpu_check_out). Meant to finish in well under 8 minutes on
# an H200 with 16 cores.
#
#   tools/gpu_check.sh                 # everything
#   GPU_CHECK_SKIP_BENCH=1 tools/gpu_check.sh
#
# GoogleTest: found by CMake when installed; otherwise its sources are taken
# from $GTEST_SOURCE (default .gpu/googletest, a copy of Debian's
# /usr/src/googletest that the device tool can carry).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
status=0
step() { echo; echo "=== $*"; }
run() { "$@" || { echo "FAILED: $*"; status=1; }; }

{
  step "machine"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

  step "build the extension (CUDAExtension)"
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"9.0+PTX"} MAX_JOBS=$JOBS
  run $PY setup.py -q build_ext --inplace --build-temp build/gpu-python
  $PY -c "import torch_mlsgd; print('CUDA kernels loaded', torch_mlsgd.CUDA_KERNELS, 'cpu kernels', torch_mlsgd.cpu_kernels())"

  step "build the C++ library, its CUDA kernels and tests against this torch"
  prefix=$($PY -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  gtest_source=${GTEST_SOURCE:-$PWD/.gpu/googletest}
  run cmake -S . -B build/gpu-cmake -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_MLSGD_BUILD_EXAMPLES=OFF -DTORCH_MLSGD_GTEST_SOURCE="$gtest_source"
  run cmake --build build/gpu-cmake --parallel "$JOBS" --target test_cuda_kernels test_laplacian_smooth test_lsgd test_mlsgd

  step "CUDA kernel tests"
  run build/gpu-cmake/tests/cpp/test_cuda_kernels
  step "C++ suites against this torch (CPU)"
  run build/gpu-cmake/tests/cpp/test_laplacian_smooth --gtest_brief=1
  run build/gpu-cmake/tests/cpp/test_lsgd --gtest_brief=1
  run build/gpu-cmake/tests/cpp/test_mlsgd --gtest_brief=1

  step "Python: CUDA cases, torch 2.x integration, and the core suites on this torch"
  run $PY -m pytest -q -p no:cacheprovider tests/python/test_cuda.py tests/python/test_torch2.py \
      tests/python/test_laplacian_smooth.py tests/python/test_lsgd.py tests/python/test_mlsgd.py \
      tests/python/test_kernel_paths.py

  if [ "${GPU_CHECK_SKIP_BENCH:-0}" != 1 ]; then
    step "CUDA benchmarks"
    run $PY benchmarks/bench_cuda.py
  fi
  step "done: status $status"
} 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
