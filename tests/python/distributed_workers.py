"""Worker processes of test_distributed.py (top-level functions, so that spawned processes can import them)."""

import os
import sys

import torch
import torch.distributed as dist

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.environ.get("TORCH_MLSGD_USE_INSTALLED") != "1" and ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch_mlsgd  # noqa: E402
from torch_mlsgd.distributed import sharded_laplacian_smooth  # noqa: E402

GLOBAL_BATCH = 32
STEPS = 5


def global_batch():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(GLOBAL_BATCH, 8, generator=g, dtype=torch.float64)
    return x, torch.sin(x.sum(1, keepdim=True))


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1)).double()


def make_optimizer(name, params, process_group=None):
    if name == "lsgd":
        return torch_mlsgd.LSGD(params, lr=0.1, sigma=1.0, momentum=0.9, process_group=process_group,
                                flatten="group" if process_group is not None else "tensor")
    return torch_mlsgd.MLSGD(params, lr=0.1, sigma=1.0, momentum=0.9, seed=3, process_group=process_group,
                             flatten="group" if process_group is not None else "tensor")


def train_single(name):
    """The reference: one process, the whole global batch."""
    model = make_model()
    optimizer = make_optimizer(name, model.parameters())
    x, y = global_batch()
    for _ in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def _init(rank, world, init_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)


def ddp_worker(rank, world, init_file, name, out):
    _init(rank, world, init_file)
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    optimizer = make_optimizer(name, model.parameters())
    x, y = global_batch()
    per_rank = GLOBAL_BATCH // world
    x, y = x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank]
    for _ in range(STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()  # DDP averages the gradients
        optimizer.step()
    torch.save([p.detach() for p in model.parameters()], os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def shard_worker(rank, world, init_file, lengths, sigma, order, dtype_name, out):
    _init(rank, world, init_file)
    dtype = getattr(torch, dtype_name)
    ring = torch.randn(sum(lengths), generator=torch.Generator().manual_seed(7), dtype=dtype)
    start = sum(lengths[:rank])
    shard = ring[start:start + lengths[rank]].clone()
    torch.save(sharded_laplacian_smooth(shard, sigma, order), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def sharded_optimizer_worker(rank, world, init_file, name, lengths, out):
    """Each rank holds parameters that together are its shard of one global vector."""
    _init(rank, world, init_file)
    g = torch.Generator().manual_seed(11)
    full = torch.randn(sum(lengths), generator=g, dtype=torch.float64)
    start = sum(lengths[:rank])
    mine = full[start:start + lengths[rank]]
    # Two parameters per rank: the shard cut in two.
    half = lengths[rank] // 2
    params = [mine[:half].clone().requires_grad_(), mine[half:].clone().requires_grad_()]
    optimizer = make_optimizer(name, params, process_group=dist.group.WORLD)
    for _ in range(STEPS):
        for p in params:
            p.grad = torch.sin(3 * p.detach()) + 0.5 * p.detach()
        optimizer.step()
    torch.save(torch.cat([p.detach() for p in params]), os.path.join(out, f"rank{rank}.pt"))
    dist.destroy_process_group()
