"""SGD vs LSGD vs MLSGD, each tuned with the same budget on a validation split.

    python3 examples/tune.py                                # --regime full, small defaults (~1 min)
    python3 examples/tune.py --regime all --threads 1       # every regime, small defaults (a few minutes)
    python3 examples/tune.py --regime full --full           # the study's size (about 30 min on one thread)
    .venv/bin/python examples/tune.py --regime dp           # DP-SGD vs DP-LSGD vs DP-MLSGD (needs Opacus)
    python3 examples/tune.py --report docs/study            # the committed study's verdict table; runs nothing

The protocol, the regimes and the outputs: examples/study/__init__.py (and `--help`);
the study's design and results: docs/study.md. The code is the package examples/study/,
on top of examples/common/ (data, models, training loops).
"""

from study.cli import main

if __name__ == "__main__":
    main()
