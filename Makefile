# torch_mlsgd: build, test and run.
#
#   make test     install what is missing, build one wheel, audit it, install it with
#                 plain pip into the oldest and the newest supported torch, and run the
#                 C++ suite (newest torch) and the whole Python suite in both
#   make demo     the main job: SGD vs LSGD vs MLSGD, each tuned on a validation split
#   make wheel    dist/torch_mlsgd-<version>-cp310-abi3-manylinux_*.whl (CPU and CUDA kernels)
#   make bench    the benchmark suite (newest torch)
#   make saddle   GD, LSGD and MLSGD at a saddle; make saddle-nets: saddle escape in
#                 deep linear and tanh networks; make attraction: the docs/ table
#   make install  install the C++ library (PREFIX=/usr/local)
#   make check-install  pip install . from source into a fresh environment, then test it
#   make gpu-stage  stage GoogleTest's sources in .gpu/ for tools/gpu_check.sh on a GPU machine
#   make format   fix the tree's style (ruff, clang-format; the suite checks it)
#
# The torches are pinned in requirements/torch.txt (floor first, newest second); each
# gets a virtual environment .venv-<version> of Debian's Python 3.11. The newest one
# builds the wheel and, in build/cmake, the C++ library against its CMake package.

PYTHON ?= /usr/bin/python3
BUILD ?= build
PREFIX ?= /usr/local
CMAKE_BUILD := $(BUILD)/cmake
JOBS ?= $(shell nproc)

TORCHES := $(shell sed -n 's/^torch==//p' requirements/torch.txt)
FLOOR := $(word 1,$(TORCHES))
NEWEST := $(word 2,$(TORCHES))
VENV_PREFIX ?= .venv-
NEWEST_PYTHON := $(VENV_PREFIX)$(NEWEST)/bin/python
FLOOR_PYTHON := $(VENV_PREFIX)$(FLOOR)/bin/python

DEBIAN_PACKAGES := python3-dev python3-venv cmake ninja-build g++ libgtest-dev \
  dataset-fashion-mnist zlib1g-dev clang libclang-rt-14-dev

CSRC := $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')
PYSRC := $(wildcard torch_mlsgd/*.py)
VERSION := $(shell sed -n 's/^\#define TORCH_MLSGD_VERSION "\(.*\)"/\1/p' csrc/include/torch_mlsgd/version.h)
WHEEL_STAMP := $(BUILD)/wheel/.built

.PHONY: all deps venvs build wheel audit install-wheels build-cpp test test-cpp test-python-floor \
  test-python-newest check-install gpu-stage format demo bench saddle saddle-nets attraction install clean distclean

all: wheel

# The environments' stamps are made by pattern rules; keep them (make would delete
# them as intermediate files, and rebuild the environments every run).
.PRECIOUS: $(VENV_PREFIX)%/.installed $(VENV_PREFIX)%/.wheel

deps:
	@tools/ensure_deps.sh $(DEBIAN_PACKAGES)

# A torch's environment: that torch, the test tools (with the training frameworks, and
# the torchvision of that torch that timm imports), and in the newest the build tools.
$(VENV_PREFIX)%/.installed: requirements/torch.txt requirements/test.txt requirements/torchvision-%.txt \
  requirements/build.txt
	@tools/ensure_deps.sh $(DEBIAN_PACKAGES)
	[ -x $(VENV_PREFIX)$*/bin/python ] || $(PYTHON) -m venv $(VENV_PREFIX)$*
	$(VENV_PREFIX)$*/bin/python -m pip install --disable-pip-version-check -q torch==$* -r requirements/test.txt \
	  -r requirements/torchvision-$*.txt $(if $(filter $*,$(NEWEST)),-r requirements/build.txt)
	@touch $@
venvs: $(VENV_PREFIX)$(FLOOR)/.installed $(VENV_PREFIX)$(NEWEST)/.installed

# The wheel: built once, against the newest torch (the ops target the floor's stable
# ABI), repaired to a manylinux tag without bundling torch's or CUDA's libraries.
wheel: $(WHEEL_STAMP)
$(WHEEL_STAMP): $(VENV_PREFIX)$(NEWEST)/.installed $(CSRC) $(PYSRC) setup.py pyproject.toml
	rm -rf $(BUILD)/wheel dist
	MAX_JOBS=$(JOBS) $(NEWEST_PYTHON) -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps \
	  -q -w $(BUILD)/wheel/raw .
	PATH=$(abspath $(VENV_PREFIX)$(NEWEST))/bin:$$PATH $(VENV_PREFIX)$(NEWEST)/bin/auditwheel repair -w dist $(BUILD)/wheel/raw/torch_mlsgd-*.whl \
	  --exclude 'libtorch*.so' --exclude 'libc10*.so' --exclude 'libcudart.so.*' --exclude 'libcufft.so.*'
	$(NEWEST_PYTHON) tools/audit_wheel.py dist/torch_mlsgd-$(VERSION)-*.whl --floor $(FLOOR)
	@touch $@

# The tags, both libraries, the stable ABI and abi3, and a minimum torch no later than
# the floor (tools/audit_wheel.py; every wheel `make wheel` builds is audited).
audit: wheel
	$(NEWEST_PYTHON) tools/audit_wheel.py dist/torch_mlsgd-$(VERSION)-*.whl --floor $(FLOOR)

# The same file into a torch's environment, with plain pip: no build flags, no compiler.
$(VENV_PREFIX)%/.wheel: $(WHEEL_STAMP) $(VENV_PREFIX)%/.installed
	$(VENV_PREFIX)$*/bin/python -m pip install --disable-pip-version-check -q --force-reinstall --no-deps \
	  dist/torch_mlsgd-$(VERSION)-*.whl
	@touch $@
install-wheels: $(VENV_PREFIX)$(FLOOR)/.wheel $(VENV_PREFIX)$(NEWEST)/.wheel

# For development: the extension built in place, so that `import torch_mlsgd` works
# from the repository root with the newest torch's Python.
build: $(VENV_PREFIX)$(NEWEST)/.installed
	MAX_JOBS=$(JOBS) $(NEWEST_PYTHON) setup.py -q build_ext --inplace --build-temp $(BUILD)/inplace

# The LibTorch library, its tests (a libFuzzer run of the op among them: tests/fuzz,
# clang with sanitizers) and C++ examples, against the newest torch.
build-cpp: $(VENV_PREFIX)$(NEWEST)/.installed
	@if [ ! -f $(CMAKE_BUILD)/CMakeCache.txt ]; then \
	  cmake -S . -B $(CMAKE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    -DCMAKE_PREFIX_PATH=$$($(NEWEST_PYTHON) -c 'import torch.utils as u; print(u.cmake_prefix_path)') \
	    $(CMAKE_ARGS); \
	fi
	cmake --build $(CMAKE_BUILD) --parallel $(JOBS)

test-cpp: build-cpp
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure --no-tests=error

# The Python suite from outside the source tree against the installed wheel. Each
# torch exchanges checkpoints with the other; torch.compile's kernel cache is each
# environment's own (inductor's default /tmp cache is shared by every environment of
# the user, and a vector ISA it recorded for another one gives kernels that fail to load).
define python_suite
	mkdir -p $(BUILD)/run-$(1)
	cd $(BUILD)/run-$(1) && \
	  MLSGD_TRAJECTORY_BIN=$(CURDIR)/$(CMAKE_BUILD)/tests/cpp/optimizer_trajectory \
	  MLSGD_OTHER_TORCH="env TORCH_MLSGD_USE_INSTALLED=1 $(abspath $(2))" TORCH_MLSGD_USE_INSTALLED=1 \
	  TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/$(BUILD)/inductor-$(1) \
	  $(abspath $(3)) -m pytest $(CURDIR)/tests/python -q -p no:cacheprovider
endef
test-python-floor: install-wheels build-cpp
	$(call python_suite,$(FLOOR),$(NEWEST_PYTHON),$(FLOOR_PYTHON))
test-python-newest: install-wheels build-cpp
	$(call python_suite,$(NEWEST),$(FLOOR_PYTHON),$(NEWEST_PYTHON))

# Everything is built first; every suite runs even when one fails, and the target
# fails if any does (pytest also fails when it collects no test, ctest through
# --no-tests=error).
test: install-wheels build-cpp
	@status=0; \
	$(MAKE) --no-print-directory test-cpp || status=1; \
	$(MAKE) --no-print-directory test-python-floor || status=1; \
	$(MAKE) --no-print-directory test-python-newest || status=1; \
	if [ $$status -ne 0 ]; then echo "FAILED: see the suite output above"; fi; \
	exit $$status

# pip install . from source, as docs/install.md tells users to, into a fresh
# environment of the newest torch, then the suite against it (needs PyPI).
check-install: deps
	tools/check_install.sh

# tools/gpu_check.sh builds the CUDA kernel tests on the GPU machine, which has no
# GoogleTest: its sources travel in .gpu/ (the device tool's `carry`; git ignores it).
gpu-stage:
	@tools/ensure_deps.sh libgtest-dev
	rm -rf .gpu/googletest
	mkdir -p .gpu
	cp -r /usr/src/googletest .gpu/googletest

# The pinned ruff and clang-format (requirements/test.txt) of the newest environment:
# import order and lint fixes for Python, layout for C++/CUDA
# (tests/python/test_code_style.py checks both; pyproject.toml and .clang-format configure them).
format: $(VENV_PREFIX)$(NEWEST)/.installed
	$(VENV_PREFIX)$(NEWEST)/bin/ruff check --fix .
	git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs $(VENV_PREFIX)$(NEWEST)/bin/clang-format -i --style=file

RUN_NEWEST := env TORCH_MLSGD_USE_INSTALLED=1 $(NEWEST_PYTHON)

# The main job: LeNet on Fashion-MNIST trained here and now with SGD, LSGD and MLSGD at
# the settings the committed study picked on its validation split, test accuracy over two
# seeds (examples/demo.py, a few minutes), then the verdict table of the committed study
# of all regimes (docs/study, made with examples/tune.py --full; docs/study.md).
demo: $(VENV_PREFIX)$(NEWEST)/.wheel
	$(RUN_NEWEST) examples/demo.py
	@echo; echo "The committed study's verdict (docs/study, tune.py --full; docs/study.md):"; echo
	$(RUN_NEWEST) examples/tune.py --report docs/study

bench: $(VENV_PREFIX)$(NEWEST)/.wheel
	$(RUN_NEWEST) benchmarks/run.py

# GD, LSGD and MLSGD at a strict saddle (writes runs/saddle.png).
saddle: $(VENV_PREFIX)$(NEWEST)/.wheel
	$(RUN_NEWEST) examples/saddle.py

# Saddle escape in deep linear and tanh networks (examples/saddle_nets.py): the default
# size in a few minutes; docs/ holds the --full run's numbers and plots.
saddle-nets: $(VENV_PREFIX)$(NEWEST)/.wheel
	$(RUN_NEWEST) examples/saddle_nets.py

# The attraction-region table and plot of docs/ (a few minutes).
attraction: $(VENV_PREFIX)$(NEWEST)/.wheel
	$(RUN_NEWEST) -m torch_mlsgd.analysis table --out docs

install: build-cpp
	cmake --install $(CMAKE_BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) dist torch_mlsgd/_C*.so torch_mlsgd/_build_info.py torch_mlsgd.egg-info

# Also removes the virtual environments (several GB each; `make venvs` rebuilds them).
distclean: clean
	rm -rf $(VENV_PREFIX)*
