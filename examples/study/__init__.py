"""SGD vs LSGD vs MLSGD, each tuned with the same budget on a validation split (examples/tune.py).

    python3 examples/tune.py                                # --regime full, small defaults (~1 min)
    python3 examples/tune.py --regime all --threads 1       # every regime, small defaults (a few minutes)
    python3 examples/tune.py --regime full --full           # the study's size (about 30 min on one thread)
    .venv/bin/python examples/tune.py --regime dp           # DP-SGD vs DP-LSGD vs DP-MLSGD (needs Opacus)
    python3 examples/tune.py --report docs/study            # the committed study's verdict table; runs nothing

The protocol, the same for every regime (docs/study.md has the grids and the sizes):

1. Splits. Fashion-MNIST's 60 000 training images are cut by position: images [0, 50000)
   are the *train part*, images [50000, 60000) the *validation part*. The small defaults
   take the first --train-size images of the train part and the first --val-size of the
   validation part. The 10 000 test images are touched only in step 4. The character LM
   cuts its byte stream by position (examples/charlm.py: 90 % train, 5 % validation, 5 % test).
2. Budget. Every optimizer gets the same number of trials: its grid is --lrs (log-spaced,
   wide) times one second axis of the same length, momentum for SGD (--sgd-momenta) and
   sigma for LSGD and MLSGD (--sigmas, at momentum --momentum, compare.py's 0.9). Every
   trial trains on the train part from the tuning seed (--tune-seed, never a reporting
   seed) for the same epochs with the same cosine learning-rate decay, as compare.py does.
3. Selection. Each optimizer's pick is its trial with the lowest final validation loss
   (--select-by accuracy: the highest validation accuracy); a trial whose loss became
   non-finite is never picked. Reported with it: whether the pick's lr (or second value)
   is at an edge of its grid (then the grid should be widened), and the largest stable lr
   (the largest lr, at the pick's other values, whose trial ended finite and at least 2 %
   below the chance-level loss, ln(classes) or ln(256)).
4. Report. Each pick is retrained on the train part from every --seeds seed (the same
   steps as in tuning, so the tuned schedule is the one reported) and evaluated once per
   epoch on the test set: mean ± std over seeds of the test loss and accuracy (perplexity
   for the LM), and wall-clock per epoch. The verdict names the best optimizer by the test
   counterpart of the selection metric and says whether its margin over the runner-up
   exceeds the spread (the sum of the two standard deviations over seeds).

Regimes (--regime, comma-separated, or all): "full" (LeNet, batch 128, as compare.py),
"small-batch" (batch 4 on a 6000-image subset, compare.py's --small-batch), "dp"
(differentially private training with Opacus, one sub-regime per --epsilons value, same
noise multiplier, clipping norm, epochs and batch size for every optimizer) and "charlm"
(examples/charlm.py's byte-level transformer on the stdlib's source; no accuracy, so
selection by validation loss). Defaults are small (subsets, 1 epoch, 4 trials per
optimizer, 2 seeds) so that every regime runs in a few minutes on 2 cores; --full gives the
study's sizes (15 trials per optimizer, 21 for dp; 3 seeds; docs/study holds its results).
Written to --out: results.json (everything), trials.csv, finals.csv, sensitivity.png
(validation loss against lr) and curves.png (training loss of the picks). --report reads
such results.json files back, prints their verdict table and, with --out, writes their merge.

The modules, in the order of the protocol:

    protocol   grids, equal budgets, trial status, selection on validation, the verdict (pure functions)
    regimes    the training problems: Fashion-MNIST's splits, LeNet, the byte-level LM
    dp         the dp regime: Opacus' DP-SGD construction around each optimizer
    tuning     runs the protocol on one regime: trials, picks, reported runs
    report     the verdict table, results.json / CSV output and reading it back
    plots      sensitivity.png and curves.png
    cli        the command line of examples/tune.py and the regimes' sizes
"""
