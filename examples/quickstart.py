"""LSGD as a drop-in replacement for torch.optim.SGD: fit y = sin(3x) with a small MLP.

    python3 examples/quickstart.py

Trains the same initial network with SGD and with LSGD (momentum 0.9 for both)
and prints the loss every 100 steps.
"""

import copy

import torch

import torch_mlsgd


def main() -> None:
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 256).unsqueeze(1)
    y = torch.sin(3 * x)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)
    )
    models = {"SGD": model, "LSGD": copy.deepcopy(model)}
    optimizers = {
        "SGD": torch.optim.SGD(models["SGD"].parameters(), lr=0.05, momentum=0.9),
        "LSGD": torch_mlsgd.LSGD(models["LSGD"].parameters(), lr=0.05, sigma=1.0, momentum=0.9),
    }
    print(f"{'step':>6} {'SGD loss':>12} {'LSGD loss':>12}")
    for step in range(1001):
        losses = {}
        for name, optimizer in optimizers.items():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(models[name](x), y)
            loss.backward()
            optimizer.step()
            losses[name] = loss.item()
        if step % 100 == 0:
            print(f"{step:>6} {losses['SGD']:>12.6f} {losses['LSGD']:>12.6f}")


if __name__ == "__main__":
    main()
