#!/usr/bin/env bash
# Builds and installs torch_mlsgd from source as docs/install.md tells users to, into a
# fresh virtual environment holding the newest pinned torch (requirements/torch.txt),
# setuptools and wheel, then runs the suites from outside the source tree against it:
#
#   pip install setuptools wheel && pip install --no-build-isolation .
#
# `make check-install` runs it (long: pip downloads torch into a new environment and
# the extension is compiled, CUDA kernels included). `make test` covers the other
# route, the wheel installed with plain pip.
#
#   tools/check_install.sh [WORK_DIR]     (default: build/check-install)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${1:-$ROOT/build/check-install}
PYTHON=${PYTHON:-/usr/bin/python3}
NEWEST=$(sed -n 's/^torch==//p' requirements/torch.txt | tail -n 1)

step() { echo; echo "=== $*"; }

rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/run"
# A clean copy of what git tracks (and untracked files it does not ignore):
# no build output of the working tree can leak into the install.
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src"

step "fresh environment with torch $NEWEST"
"$PYTHON" -m venv "$WORK/env"
"$WORK/env/bin/python" -m pip install --disable-pip-version-check -q "torch==$NEWEST" -r requirements/test.txt \
  -r "requirements/torchvision-$NEWEST.txt"
"$WORK/env/bin/python" -m pip install --disable-pip-version-check -q setuptools wheel

step "pip install --no-build-isolation ."
(cd "$WORK/src" && MAX_JOBS=$(nproc) "$WORK/env/bin/python" -m pip install --disable-pip-version-check \
  --no-build-isolation -q .)

step "the suites against the installed package"
(cd "$WORK/run" && TORCH_MLSGD_USE_INSTALLED=1 TORCHINDUCTOR_CACHE_DIR="$WORK/inductor" \
  "$WORK/env/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/python")
