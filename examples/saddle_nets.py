"""Saddle escape in neural networks: GD, LSGD and MLSGD where training stalls at saddles.

    python3 examples/saddle_nets.py [--quick | --full] [--out DIR] [--problems dln,tanh]

A deep linear network and a tanh network from a small initialisation rest on one plateau
(a saddle) per singular value of their target; every method gets its own tuned step size.
The problems, the measurements and the outputs: examples/saddle_study/__init__.py (and
`--help`); the results: docs/saddles.md.
"""

from saddle_study.cli import main

if __name__ == "__main__":
    main()
