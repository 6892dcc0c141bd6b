"""The gradient field and the step loops that the optimizer tests share."""

import torch


def gradient_of(p):
    """A deterministic, nonlinear gradient field: each step depends on the parameters."""
    return torch.sin(3.0 * p) + 0.5 * p


def train(optimizer, params, steps):
    """`steps` steps on gradient_of's field."""
    for _ in range(steps):
        for p in params:
            p.grad = gradient_of(p.detach())
        optimizer.step()


def step_with_reference(optimizer, reference, params):
    """One step of `optimizer` and of a NumPy reference (reference.py) on the same gradients."""
    grads = [gradient_of(p.detach()) for p in params]
    for p, g in zip(params, grads):
        p.grad = g
    optimizer.step()
    reference.step([g.numpy() for g in grads])


def step_side_by_side(ours, theirs, params, their_params, steps):
    """`steps` steps of two optimizers on the same gradient field of their own parameters."""
    for _ in range(steps):
        for p, q in zip(params, their_params):
            p.grad = gradient_of(p.detach())
            q.grad = gradient_of(q.detach())
        ours.step()
        theirs.step()


def fit(model, optimizer, loss_function, x, y, steps):
    """`steps` full-batch steps of `model` on (x, y); returns the loss before each step."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_function(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def small_model_and_data(seed=0):
    """A small tanh network and a batch for it: the same ones for the same seed."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    return model, torch.randn(32, 8), torch.randn(32, 2)


def mse(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)
