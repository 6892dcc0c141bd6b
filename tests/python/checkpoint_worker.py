"""Run by test_other_torch.py under the *other* torch of the test matrix
(Debian's 1.13 or PyPI's 2.x): trains a fixed small model for a few steps with LSGD
or MLSGD, optionally resuming from a checkpoint, and saves a checkpoint.

    python checkpoint_worker.py OPTIMIZER STEPS OUT [IN]

The model, data and hyper-parameters are defined here once and imported by the
test, so both torches run exactly the same training.
"""

import os
import sys

if os.environ.get("TORCH_MLSGD_USE_INSTALLED") != "1":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402

import torch_mlsgd  # noqa: E402

KWARGS = {
    "lsgd": dict(lr=0.05, sigma=2.0, momentum=0.9, weight_decay=1e-3, nesterov=True),
    "mlsgd": dict(lr=0.05, sigma=1.0, momentum=0.9, schedule="random", seed=7),
}


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 20), torch.nn.Tanh(), torch.nn.Linear(20, 3)).double()


def make_optimizer(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    cls = torch_mlsgd.LSGD if name == "lsgd" else torch_mlsgd.MLSGD
    return cls(model.parameters(), **KWARGS[name])


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, first: int, steps: int) -> None:
    """Steps first, ..., first + steps - 1; batch k depends only on k."""
    for k in range(first, first + steps):
        g = torch.Generator().manual_seed(1000 + k)
        x = torch.randn(16, 6, generator=g, dtype=torch.float64)
        y = torch.randn(16, 3, generator=g, dtype=torch.float64)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def save(path: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps_done: int) -> None:
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "steps": steps_done,
                "torch": str(torch.__version__)}, path)


def resume(name: str, path: str):
    """The model and optimizer restored from a checkpoint, and the steps it holds.
    Loaded as a user of this torch would: torch 2.6+ defaults to weights_only=True."""
    checkpoint = torch.load(path)
    model = make_model()
    model.load_state_dict(checkpoint["model"])
    optimizer = make_optimizer(name, model)
    optimizer.load_state_dict(checkpoint["optimizer"])
    return model, optimizer, checkpoint["steps"]


def main() -> None:
    name, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if len(sys.argv) > 4:
        model, optimizer, done = resume(name, sys.argv[4])
    else:
        model = make_model()
        optimizer, done = make_optimizer(name, model), 0
    train(model, optimizer, done, steps)
    save(out, model, optimizer, done + steps)


if __name__ == "__main__":
    main()
