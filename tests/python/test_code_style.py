"""The tree's code style, checked like any other behaviour: ruff (pyflakes, pycodestyle,
import order; pyproject.toml) for Python, clang-format (.clang-format) for C++ and CUDA.
Both tools are pinned in requirements/test.txt, so every environment of the suite judges
alike; `make format` applies them."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CXX_FOLDERS = ("csrc", "tests", "examples", "benchmarks")
CXX_SUFFIXES = (".cpp", ".h", ".cu", ".cuh")


def _tool(name: str) -> str:
    """The pinned tool of this environment (installed next to its Python)."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    assert os.access(path, os.X_OK), f"{name} is not installed next to {sys.executable}: see requirements/test.txt"
    return path


def _ruff(*args: str) -> list:
    return [_tool("ruff"), "check", "--no-cache", "--config", os.path.join(ROOT, "pyproject.toml"), *args]


def _clang_format(*args: str) -> list:
    return [_tool("clang-format"), "--dry-run", "--Werror", f"--style=file:{os.path.join(ROOT, '.clang-format')}",
            *args]


def cxx_sources():
    """Every C++/CUDA source of the repository (build outputs and hidden folders aside)."""
    found = []
    for folder in CXX_FOLDERS:
        for directory, subfolders, files in os.walk(os.path.join(ROOT, folder)):
            subfolders[:] = [s for s in subfolders if not s.startswith((".", "__"))]
            found += [os.path.join(directory, f) for f in files if f.endswith(CXX_SUFFIXES)]
    return sorted(found)


def _passes(command) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{os.path.basename(command[0])} found problems (make format fixes most):\n" \
        f"{result.stdout[-6000:]}{result.stderr[-6000:]}"


def test_python_passes_ruff():
    _passes(_ruff("."))


def test_cxx_sources_are_clang_formatted():
    sources = cxx_sources()
    assert sum(s.endswith(".cu") for s in sources) >= 2 and len(sources) > 40, sources
    _passes(_clang_format(*sources))


@pytest.mark.parametrize("name, text", [
    ("unused.py", "import os\n"),
    ("unsorted.py", "import sys\nimport os\n\nprint(os, sys)\n"),
    ("layout.cpp", "int  f( ){return 1;}\n"),
])
def test_the_checks_refuse_a_bad_file(tmp_path, name, text):
    """The same commands fail on a file with a lint or layout problem, so that a clean tree
    means something."""
    path = tmp_path / name
    path.write_text(text)
    command = _ruff(str(path)) if name.endswith(".py") else _clang_format(str(path))
    assert subprocess.run(command, capture_output=True).returncode != 0
