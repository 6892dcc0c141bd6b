#!/usr/bin/env bash
# The GPU check: one command that a lent GPU machine runs once, and whose exit
# status can be trusted. On a machine whose python3 has a CUDA torch it
#   1. builds the extension in place for this GPU's architecture, and, at the
#      same time, the CUDA kernel tests with nvcc alone (no torch, no CMake);
#   2. runs the kernel tests (GoogleTest) and every CUDA case of the Python
#      suite (pytest -k cuda: tests/python/test_cuda.py and the CUDA cases of
#      the other files);
#   3. runs the short CUDA benchmark (benchmarks/bench_cuda.py --quick);
# each step under its own timeout, and writes gpu_check.log, summary.txt and the
# steps' reports to $OUT (default ./gpu_check_out). It exits 1 when any step
# failed or timed out, and 2 at once when no CUDA device is visible.
#
#   make gpu-stage                   here, before: stages GoogleTest's sources in .gpu/
#   tools/gpu_check.sh               there (device tool: carry .gpu, timeout_s 480)
#   tools/gpu_check.sh --dry-run     anywhere: checks and prints the plan, runs nothing
#
# Environment: PYTHON (python3), JOBS (nproc), CUDA_ARCH (from the device, e.g. 90),
# GPU_CHECK_BUDGET (420 s for everything; steps are cut to fit),
# GTEST_SOURCE (.gpu/googletest), GPU_CHECK_BUILD (build/gpu), GPU_CHECK_SKIP_BENCH=1, OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY_RUN=0
case "${1:-}" in
  --dry-run) DRY_RUN=1 ;;
  "") ;;
  *) echo "usage: tools/gpu_check.sh [--dry-run]" >&2; exit 64 ;;
esac

OUT=${OUT:-$ROOT/gpu_check_out}
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
GTEST_SOURCE=${GTEST_SOURCE:-$ROOT/.gpu/googletest}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
BUILD=${GPU_CHECK_BUILD:-$ROOT/build/gpu}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
: >"$OUT/summary.txt"

failures=0
# The whole check ends within BUDGET seconds (default 420: a 480 s device command
# keeps its summary); each step's timeout is capped by what is left of it.
BUDGET=${GPU_CHECK_BUDGET:-420}
# step NAME SECONDS COMMAND...: runs COMMAND under a timeout, records its status.
step() {
  local name=$1 seconds=$2
  shift 2
  local left=$((BUDGET - SECONDS - 5))
  if [ "$DRY_RUN" = 0 ] && [ "$left" -lt "$seconds" ]; then
    seconds=$((left > 1 ? left : 1))
  fi
  echo
  echo "=== $name (timeout ${seconds}s)"
  if [ "$DRY_RUN" = 1 ]; then
    if [ "$(type -t "$1")" = function ]; then
      declare -f "$1" | sed -n '3,$p' | sed '$d'
    else
      printf '   '
      printf ' %q' "$@"
      echo
    fi
    printf '%-28s %s\n' "$name" "planned" >>"$OUT/summary.txt"
    return 0
  fi
  local start=$SECONDS status
  if [ "$(type -t "$1")" = function ]; then  # timeout runs programs: a function runs in a child bash
    export -f "$1"
    timeout --kill-after=10 "$seconds" bash -c '"$@"' gpu_check "$@"
  else
    timeout --kill-after=10 "$seconds" "$@"
  fi
  status=$?
  local verdict="ok"
  if [ $status -eq 124 ] || [ $status -eq 137 ]; then
    verdict="TIMED OUT"
  elif [ $status -ne 0 ]; then
    verdict="FAILED (exit $status)"
  fi
  [ "$verdict" = ok ] || failures=$((failures + 1))
  printf '%-28s %-20s %4ds\n' "$name" "$verdict" $((SECONDS - start)) | tee -a "$OUT/summary.txt"
}

# What the plan needs from the checkout: a broken path fails the dry run in CI.
# (The kernel layer's sources: as setup.py's, the .cu files and the torch-free filter.)
KERNEL_SOURCES="$(echo csrc/cuda/kernels/*.cu) csrc/core/recursive_filter.cpp"
need=(setup.py tests/cuda/test_cuda_kernels.cpp tests/python/test_cuda.py benchmarks/bench_cuda.py $KERNEL_SOURCES)
for path in "${need[@]}"; do
  [ -e "$path" ] || { echo "gpu_check: $path is missing from the checkout" >&2; exit 1; }
done
if [ ! -f "$GTEST_SOURCE/googletest/src/gtest-all.cc" ]; then
  echo "gpu_check: no GoogleTest sources at $GTEST_SOURCE: run 'make gpu-stage' here and carry .gpu" >&2
  exit 1
fi

if [ "$DRY_RUN" = 0 ]; then
  exec > >(tee "$OUT/gpu_check.log") 2>&1
  # No GPU: say so at once, before any build.
  if ! device=$($PY -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name(), "".join(map(str, torch.cuda.get_device_capability())), torch.__version__, torch.version.cuda)' 2>&1); then
    echo "gpu_check: no CUDA device visible to $PY (${device##*$'\n'}); nothing was run"
    echo "no CUDA device" >"$OUT/summary.txt"
    exit 2
  fi
  device=${device##*$'\n'}  # the last line: torch may warn first
  read -r -a fields <<<"$device"
  CUDA_ARCH=${CUDA_ARCH:-${fields[-3]}}
  echo "gpu_check: $device"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
else
  CUDA_ARCH=${CUDA_ARCH:-90}
  echo "gpu_check --dry-run: the plan, with CUDA_ARCH=$CUDA_ARCH"
fi
ARCH_DOTTED="${CUDA_ARCH%?}.${CUDA_ARCH: -1}"
mkdir -p "$BUILD"
export NVCC CUDA_ARCH ARCH_DOTTED GTEST_SOURCE BUILD PY JOBS KERNEL_SOURCES

# 1. Both builds at once: the extension (torch; all cores but two) and the kernel
#    tests (nvcc and GoogleTest only; one process per source, then the link).
build_kernel_tests() {
  local flags=(-std=c++17 -O2 -arch="sm_$CUDA_ARCH" -lineinfo -Xcompiler=-pthread
               -I csrc -I "$GTEST_SOURCE/googletest/include" -I "$GTEST_SOURCE/googletest")
  local objects=() pids=() source object
  for source in tests/cuda/test_cuda_kernels.cpp $KERNEL_SOURCES "$GTEST_SOURCE/googletest/src/gtest-all.cc"; do
    object="$BUILD/$(basename "$source").o"
    "$NVCC" "${flags[@]}" -x "$([ "${source##*.}" = cu ] && echo cu || echo c++)" -c "$source" -o "$object" &
    pids+=($!)
    objects+=("$object")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || return 1
  done
  # The CUDA toolkit's own libraries at run time too (the loader may not know them).
  local cuda_lib
  cuda_lib="$(cd "$(dirname "$(readlink -f "$NVCC")")/.." && pwd)/lib64"
  "$NVCC" "${flags[@]}" "${objects[@]}" -lcufft -Xlinker -rpath -Xlinker "$cuda_lib" -o "$BUILD/test_cuda_kernels"
}
build_extension() {
  TORCH_CUDA_ARCH_LIST="$ARCH_DOTTED" MAX_JOBS=$((JOBS > 4 ? JOBS - 2 : JOBS)) \
    "$PY" setup.py -q build_ext --inplace --build-temp "$BUILD/extension"
}
if [ "$DRY_RUN" = 1 ]; then
  step "build kernel tests" 300 build_kernel_tests
  step "build extension" 300 build_extension
else
  step "build kernel tests" 300 build_kernel_tests >"$OUT/build_kernel_tests.log" 2>&1 &
  kernel_build=$!
  step "build extension" 300 build_extension
  wait "$kernel_build"
  cat "$OUT/build_kernel_tests.log"
  grep -q "build kernel tests *ok" "$OUT/summary.txt" || failures=$((failures + 1))
fi

# 2. The tests.
step "CUDA kernel tests" 180 "$BUILD/test_cuda_kernels" --gtest_output="xml:$OUT/kernel_tests.xml"
step "pytest CUDA cases" 300 "$PY" -m pytest tests/python -k cuda -q -p no:cacheprovider -rs \
  --junitxml="$OUT/pytest_cuda.xml"

# 3. The benchmark.
if [ "${GPU_CHECK_SKIP_BENCH:-0}" != 1 ]; then
  step "CUDA benchmark" 240 "$PY" benchmarks/bench_cuda.py --quick --json "$OUT/bench_cuda.json"
fi

echo
echo "=== summary"
cat "$OUT/summary.txt"
if [ "$DRY_RUN" = 1 ]; then
  exit 0
fi
if [ "$failures" -ne 0 ]; then
  echo "gpu_check: $failures step(s) failed"
  exit 1
fi
echo "gpu_check: every step passed"
