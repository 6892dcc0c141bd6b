#!/usr/bin/env bash
# Installs torch_mlsgd as its users do, into fresh virtual environments holding
# PyPI's torch (the pin of requirements/torch2.txt) and the test tools only, and
# runs the tests from outside the source tree against each installed copy:
#
#   A  `pip install --no-build-isolation .` from a clean copy of the sources;
#      then the extension and core suites against it;
#   B  the wheel that `pip wheel --no-build-isolation .` built in A, installed
#      into a second fresh environment; then the whole Python suite against it.
#
# `make check-install` runs it (long: pip downloads torch into two environments
# and builds the extension twice). It needs PyPI; the C++ package is
# checked by CTest's install_and_consume in `make test` on both torches.
#
#   tools/check_install.sh [WORK_DIR]     (default: build/check-install)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${1:-$ROOT/build/check-install}
PYTHON=${PYTHON:-/usr/bin/python3}

elapsed() { echo "$(($(date +%s) - $1)) s"; }
step() { echo; echo "=== $*"; }

fresh_env() {
  "$PYTHON" -m venv "$1"
  "$1/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements/torch2.txt"
}

# The suite against the installed package, from a folder outside the sources.
run_tests() {
  local env=$1
  shift
  (cd "$WORK/run" && TORCH_MLSGD_USE_INSTALLED=1 TORCHINDUCTOR_CACHE_DIR="$env/inductor" "$env/bin/python" -m pytest -q -p no:cacheprovider "$@")
}

rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/run" "$WORK/dist"
# A clean copy of what git tracks (and untracked files it does not ignore):
# no build output of the working tree can leak into the install.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src"

started=$(date +%s)
step "A: fresh environment with torch $(grep '^torch==' requirements/torch2.txt)"
fresh_env "$WORK/env-a"
echo "set-up: $(elapsed "$started")"

t=$(date +%s)
step "A: pip install --no-build-isolation ."
(cd "$WORK/src" && "$WORK/env-a/bin/python" -m pip install --no-build-isolation -q .)
echo "build and install: $(elapsed "$t")"
run_tests "$WORK/env-a" "$ROOT/tests/python/test_extension.py" "$ROOT/tests/python/test_laplacian_smooth.py" \
  "$ROOT/tests/python/test_lsgd.py" "$ROOT/tests/python/test_mlsgd.py"

t=$(date +%s)
step "A: pip wheel --no-build-isolation ."
(cd "$WORK/src" && "$WORK/env-a/bin/python" -m pip wheel --no-build-isolation --no-deps -q -w "$WORK/dist" .)
ls "$WORK/dist"
echo "wheel: $(elapsed "$t")"

t=$(date +%s)
step "B: a second fresh environment, the wheel installed into it"
fresh_env "$WORK/env-b"
"$WORK/env-b/bin/python" -m pip install -q "$WORK"/dist/torch_mlsgd-*.whl
echo "set-up: $(elapsed "$t")"
"$WORK/env-b/bin/python" -c "import torch, torch_mlsgd; print('torch', torch.__version__, '| torch_mlsgd', \
torch_mlsgd.__version__, 'from', torch_mlsgd.__file__, '| CUDA kernels built for', torch_mlsgd._C.cuda_version or 'none')"

t=$(date +%s)
step "B: the whole Python suite against the installed wheel"
run_tests "$WORK/env-b" "$ROOT/tests/python"
echo "suite: $(elapsed "$t")"

step "done in $(elapsed "$started")"
