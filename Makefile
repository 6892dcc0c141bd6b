# torch_mlsgd: build, test and run.
#
#   make test     install what is missing, build, and run every test against both
#                 torches: Debian's 1.13 (in place) and PyPI's 2.x (installed wheel)
#   make demo     the main job: SGD vs LSGD vs MLSGD, each tuned on a validation split
#   make bench    the benchmark suite (bench-torch2: the same against PyPI's torch)
#   make saddle   GD, LSGD and MLSGD at a saddle; make saddle-nets: saddle escape in
#                 deep linear and tanh networks; make attraction: the docs/ table
#   make install  install the C++ library (PREFIX=/usr/local)
#   make check-install  pip install . and a wheel into fresh environments, then test them
#
# The Debian leg builds the extension in place with $(PYTHON) and the C++ library
# in build/cmake. The PyPI leg installs requirements/torch2.txt into the virtual
# environment $(VENV), builds a wheel there and installs it, builds the C++
# library against that torch in build/torch2/cmake, and runs the Python suite
# from outside the source tree against the installed package.

PYTHON ?= /usr/bin/python3
BUILD ?= build
PREFIX ?= /usr/local
CMAKE_BUILD := $(BUILD)/cmake
JOBS ?= $(shell nproc)

VENV ?= .venv
TORCH2_PYTHON := $(VENV)/bin/python
TORCH2_BUILD := $(BUILD)/torch2
TORCH2_REQUIREMENTS := requirements/torch2.txt

DEBIAN_PACKAGES := python3-torch libtorch-dev python3-numpy python3-scipy python3-mpmath python3-pytest \
  python3-setuptools python3-dev python3-venv pybind11-dev python3-pybind11 cmake ninja-build g++ libgtest-dev \
  python3-hypothesis python3-tqdm python3-matplotlib dataset-fashion-mnist zlib1g-dev \
  clang libclang-rt-14-dev

CSRC := $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')
PYSRC := $(wildcard torch_mlsgd/*.py)
EXTENSION_STAMP := $(BUILD)/python/.built
VENV_STAMP := $(VENV)/.installed
WHEEL_STAMP := $(TORCH2_BUILD)/.installed

# What the suites need besides the build: the C++ optimizer binary the Python
# suite compares against, and each leg's view of the other torch (for the
# checkpoint-exchange tests).
TORCH1_RUN := env TORCH_MLSGD_USE_INSTALLED=0 $(abspath $(PYTHON))
TORCH2_RUN := env TORCH_MLSGD_USE_INSTALLED=1 $(abspath $(TORCH2_PYTHON))

.PHONY: all deps build build-python build-cpp build-torch2 venv test test-torch1 test-torch2 \
  test-cpp test-python check-install demo bench bench-torch2 saddle saddle-nets attraction install clean distclean

all: build

deps:
	@tools/ensure_deps.sh $(DEBIAN_PACKAGES)

build: deps build-python build-cpp

# The Python extension, built in place so that `import torch_mlsgd` works here.
build-python: deps $(EXTENSION_STAMP)
$(EXTENSION_STAMP): $(CSRC) setup.py
	MAX_JOBS=$(JOBS) $(PYTHON) setup.py -q build_ext --inplace --build-temp $(BUILD)/python
	@touch $@

# The LibTorch library, its tests and C++ examples, against $(PYTHON)'s torch.
build-cpp: deps
	@if [ ! -f $(CMAKE_BUILD)/CMakeCache.txt ]; then \
	  prefix=$$($(PYTHON) -c 'import os, torch.utils as u; p = u.cmake_prefix_path; print(p if os.path.isdir(p) else "")'); \
	  cmake -S . -B $(CMAKE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    $${prefix:+-DCMAKE_PREFIX_PATH=$$prefix} $(CMAKE_ARGS); \
	fi
	cmake --build $(CMAKE_BUILD) --parallel $(JOBS)

# The project's virtual environment with PyPI's torch (Debian's Python 3.11).
venv: $(VENV_STAMP)
$(VENV_STAMP): $(TORCH2_REQUIREMENTS)
	@tools/ensure_deps.sh $(DEBIAN_PACKAGES)
	[ -x $(TORCH2_PYTHON) ] || $(PYTHON) -m venv $(VENV)
	$(TORCH2_PYTHON) -m pip install --disable-pip-version-check -q -r $(TORCH2_REQUIREMENTS)
	@touch $@

# The wheel, built as users build it (pip, against the environment's torch) and
# installed into the environment.
build-torch2: venv $(WHEEL_STAMP)
	@$(MAKE) --no-print-directory build-cpp PYTHON=$(TORCH2_PYTHON) CMAKE_BUILD=$(TORCH2_BUILD)/cmake \
	  CMAKE_ARGS=-DTORCH_MLSGD_FUZZ=OFF
$(WHEEL_STAMP): $(VENV_STAMP) $(CSRC) $(PYSRC) setup.py pyproject.toml
	rm -rf $(TORCH2_BUILD)/dist
	MAX_JOBS=$(JOBS) $(TORCH2_PYTHON) -m pip wheel --no-build-isolation --no-deps -q -w $(TORCH2_BUILD)/dist .
	$(TORCH2_PYTHON) -m pip install --force-reinstall --no-deps -q $(TORCH2_BUILD)/dist/torch_mlsgd-*.whl
	@mkdir -p $(TORCH2_BUILD)/run && touch $@

test-cpp: build-cpp
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure --no-tests=error

# The Python suite in place, against $(PYTHON)'s torch.
test-python: build-python build-cpp
	MLSGD_TRAJECTORY_BIN=$(CURDIR)/$(CMAKE_BUILD)/tests/cpp/optimizer_trajectory \
	MLSGD_OTHER_TORCH="$(TORCH2_RUN)" \
	  $(PYTHON) -m pytest tests/python -q

test-torch1: build
	@status=0; \
	$(MAKE) --no-print-directory test-cpp || status=1; \
	$(MAKE) --no-print-directory test-python || status=1; \
	exit $$status

# The PyPI leg: the C++ suites against that torch's CMake package, and the Python
# suite from outside the source tree against the installed wheel. torch.compile's
# kernel cache is this leg's own: inductor's default /tmp/torchinductor_$USER is
# shared by every Python environment of the user, and a vector ISA it recorded for
# another one gives kernels that fail to load here (docs/install.md).
test-torch2: build-torch2
	@status=0; \
	$(MAKE) --no-print-directory test-cpp PYTHON=$(TORCH2_PYTHON) CMAKE_BUILD=$(TORCH2_BUILD)/cmake || status=1; \
	cd $(TORCH2_BUILD)/run && \
	  MLSGD_TRAJECTORY_BIN=$(CURDIR)/$(TORCH2_BUILD)/cmake/tests/cpp/optimizer_trajectory \
	  MLSGD_OTHER_TORCH="$(TORCH1_RUN)" TORCH_MLSGD_USE_INSTALLED=1 \
	  TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/$(TORCH2_BUILD)/inductor \
	  $(abspath $(TORCH2_PYTHON)) -m pytest $(CURDIR)/tests/python -q -p no:cacheprovider || status=1; \
	exit $$status

# Both legs are built first (each suite exchanges checkpoints with the other
# torch); both suites run even when one fails, and the target fails if either
# does (pytest also fails when it collects no test, ctest through --no-tests=error).
test: build build-torch2
	@status=0; \
	$(MAKE) --no-print-directory test-torch1 || status=1; \
	$(MAKE) --no-print-directory test-torch2 || status=1; \
	if [ $$status -ne 0 ]; then echo "FAILED: see the suite output above"; fi; \
	exit $$status

# pip install . and a wheel in fresh environments with PyPI's torch, each tested
# from outside the source tree (about 25 minutes; needs PyPI).
check-install: deps
	tools/check_install.sh

# The main job: a small tuned comparison run here and now (examples/tune.py's default
# sizes for the two Fashion-MNIST regimes; 1.5-3.5 min on 2 cores), then the verdict table
# of the committed study of all regimes (docs/study, made with --full; docs/comparison.md).
# Left out of the live part: charlm (5 min more on Debian's torch, whose reference BLAS is
# slow for the transformer) and dp (needs Opacus, i.e. the torch 2 venv).
demo: build-python
	$(PYTHON) examples/tune.py --regime full,small-batch
	@echo; echo "The committed study (docs/study, tune.py --full; docs/comparison.md):"; echo
	$(PYTHON) examples/tune.py --report docs/study

bench: build-python
	$(PYTHON) benchmarks/run.py

bench-torch2: build-torch2
	TORCH_MLSGD_USE_INSTALLED=1 $(TORCH2_PYTHON) benchmarks/run.py

# GD, LSGD and MLSGD at a strict saddle (writes runs/saddle.png).
saddle: build-python
	$(PYTHON) examples/saddle.py

# Saddle escape in deep linear and tanh networks (examples/saddle_nets.py): the default
# size in a few minutes; docs/ holds the --full run's numbers and plots.
saddle-nets: build-python
	$(PYTHON) examples/saddle_nets.py

# The attraction-region table and plot of docs/ (a few minutes).
attraction: build-python
	$(PYTHON) -m torch_mlsgd.analysis table --out docs

install: build-cpp
	cmake --install $(CMAKE_BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) torch_mlsgd/_C*.so torch_mlsgd.egg-info

# Also removes the virtual environment (several GB; `make venv` rebuilds it).
distclean: clean
	rm -rf $(VENV)
