# torch_mlsgd: build, test and run.
#
#   make test     install what is missing, build both libraries, run every test
#   make demo     the main job: SGD vs LSGD vs MLSGD on Fashion-MNIST
#   make bench    the benchmark suite
#   make saddle   GD, LSGD and MLSGD at a saddle; make attraction: the docs/ table
#   make install  install the C++ library (PREFIX=/usr/local)
#
# PYTHON selects the interpreter whose torch is built against (Debian's by
# default); CMake then uses that torch's CMake package when it ships one.

PYTHON ?= /usr/bin/python3
BUILD ?= build
PREFIX ?= /usr/local
CMAKE_BUILD := $(BUILD)/cmake
JOBS ?= $(shell nproc)

DEBIAN_PACKAGES := python3-torch libtorch-dev python3-numpy python3-scipy python3-mpmath python3-pytest \
  python3-setuptools python3-dev pybind11-dev python3-pybind11 cmake ninja-build g++ libgtest-dev \
  python3-hypothesis python3-tqdm python3-matplotlib dataset-fashion-mnist zlib1g-dev \
  clang libclang-rt-14-dev

CSRC := $(shell find csrc -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh')
EXTENSION_STAMP := $(BUILD)/python/.built

.PHONY: all deps build build-python build-cpp test test-cpp test-python demo bench saddle attraction install clean

all: build

deps:
	@tools/ensure_deps.sh $(DEBIAN_PACKAGES)

build: deps build-python build-cpp

# The Python extension, built in place so that `import torch_mlsgd` works here.
build-python: deps $(EXTENSION_STAMP)
$(EXTENSION_STAMP): $(CSRC) setup.py
	MAX_JOBS=$(JOBS) $(PYTHON) setup.py -q build_ext --inplace --build-temp $(BUILD)/python
	@touch $@

# The LibTorch library, its tests and C++ examples.
build-cpp: deps
	@if [ ! -f $(CMAKE_BUILD)/CMakeCache.txt ]; then \
	  prefix=$$($(PYTHON) -c 'import os, torch.utils as u; p = u.cmake_prefix_path; print(p if os.path.isdir(p) else "")'); \
	  cmake -S . -B $(CMAKE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	    $${prefix:+-DCMAKE_PREFIX_PATH=$$prefix}; \
	fi
	cmake --build $(CMAKE_BUILD) --parallel $(JOBS)

test-cpp: build-cpp
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure --no-tests=error

test-python: build-python build-cpp
	MLSGD_TRAJECTORY_BIN=$(CURDIR)/$(CMAKE_BUILD)/tests/cpp/optimizer_trajectory \
	  $(PYTHON) -m pytest tests/python -q

# Both suites run even when the first fails; the target fails if either does
# (pytest also fails when it collects no test, ctest through --no-tests=error).
test: build
	@status=0; \
	$(MAKE) --no-print-directory test-cpp || status=1; \
	$(MAKE) --no-print-directory test-python || status=1; \
	if [ $$status -ne 0 ]; then echo "FAILED: see the suite output above"; fi; \
	exit $$status

demo: build-python
	$(PYTHON) examples/compare.py

bench: build-python
	$(PYTHON) benchmarks/run.py

# GD, LSGD and MLSGD at a strict saddle (writes runs/saddle.png).
saddle: build-python
	$(PYTHON) examples/saddle.py

# The attraction-region table and plot of docs/ (a few minutes).
attraction: build-python
	$(PYTHON) -m torch_mlsgd.analysis table --out docs

install: build-cpp
	cmake --install $(CMAKE_BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) torch_mlsgd/_C*.so
