"""Saddle escape in neural networks: GD, LSGD and MLSGD where training stalls at saddles
(examples/saddle_nets.py).

    python3 examples/saddle_nets.py [--quick | --full] [--out DIR] [--problems dln,tanh]

Two saddle-dominated problems, full batch and deterministic (float64):

1. **Deep linear network** (Saxe, McClelland and Ganguli, 2014): depth 3, all widths 32,
   whitened inputs (the 32 x 32 identity: n = 32 samples), target map
   W* = U diag(s) V^T with singular values s = (8, 4, 2, 1) and random orthonormal U, V.
   Loss 1/(2n) ||W3 W2 W1 - W*||_F^2. From a small initialisation (every weight
   N(0, (0.01 / sqrt(32))^2): the origin is a saddle) full-batch GD learns the modes
   one at a time, resting on a plateau (a saddle) before each: with k modes learnt the
   loss sits at L_k = 1/(2n) sum_{j>k} s_j^2, exactly.
2. **tanh network**: the same task, widths and small initialisation with tanh between
   the layers. Near the origin tanh(z) = z + O(z^3), so the saddles of the small-weight
   region are the linear network's to first order and the same levels L_k cut its
   plateaus (exact for the linear network, approximate for this one, whose exits are
   cut at the same midpoints). Its nonlinearity changes how long it rests on each saddle.

Plateau exit (both problems): plateau k ends at the first step at which the loss falls
below the midpoint (L_k + L_{k+1}) / 2; the steps spent on plateau k are its exit step
minus the previous plateau's exit step (the first counts from step 0). The target loss
is a fixed fraction of the last level (--target-fraction of L_{last}, below every plateau).

Methods: GD (torch.optim.SGD without momentum), LSGD at several sigma, MLSGD with its
schedules, and two references: mini-batch SGD (batch 8, the usual noisy escape) and
perturbed GD (GD plus isotropic Gaussian noise of standard deviation --perturbation on
every weight at every step). Every method gets its own step size: the one of the grid
that reaches the target loss in the fewest steps (median over separate tuning seeds,
never the evaluation seeds; if no step size reaches it, the lowest final loss). Each
picked setting then runs from --seeds initialisations.

Reported per method: steps on each plateau, steps to the target loss, final loss (median
and quartiles over seeds), and the distance to the saddles over time: in function space,
||f_t - f_k|| over the training inputs, where f_k is the network function at saddle k (the
rank-k truncation of W*, for both networks).

Writes DIR/saddle_nets.json, DIR/saddle_nets_<problem>.csv (every run),
DIR/saddle_nets_summary.csv and DIR/saddle_nets_<problem>.png.

The modules: problems (the two networks and their plateau levels), plateaus (the exit
detector and the median/quartile summaries), runs (the methods, one training run, the
step-size tuning), plots, and cli (the command line, the study and its outputs).
"""
