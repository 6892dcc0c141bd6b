"""Worker processes of test_distributed.py and test_distributed_engines.py (top-level
functions, so that spawned processes can import them)."""

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
    flatten = "group" if process_group is not None else "tensor"
    if name == "sgd+smoothing":  # torch's SGD on gradients smoothed by torch_mlsgd.register_smoothing
        optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        torch_mlsgd.register_smoothing(optimizer, 1.0, flatten=flatten, process_group=process_group)
        return optimizer
    if name == "lsgd":
        return torch_mlsgd.LSGD(params, lr=0.1, sigma=1.0, momentum=0.9, process_group=process_group,
                                flatten="group" if process_group is not None else "tensor")
    if name == "lsadamw":
        return torch_mlsgd.LSAdamW(params, lr=0.01, sigma=1.0, process_group=process_group, flatten=flatten)
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


def _finish(results, rank, out):
    """Saves this rank's results (to out/rank<rank>.pt, where the test reads them) and
    leaves the worker. The barrier keeps any rank from closing its gloo connections
    while a peer still talks on them; os._exit skips the interpreter's finalization,
    where gloo's worker threads can still be torn down out of order (std::terminate,
    "terminate called without an active exception", SIGABRT) long after the checked
    work is done. Failures never get here: they raise, and torch.multiprocessing
    reports them."""
    torch.save(results, os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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
    _finish([p.detach() for p in model.parameters()], rank, out)


def shard_worker(rank, world, init_file, lengths, sigma, order, dtype_name, out):
    _init(rank, world, init_file)
    dtype = getattr(torch, dtype_name)
    ring = torch.randn(sum(lengths), generator=torch.Generator().manual_seed(7), dtype=dtype)
    start = sum(lengths[:rank])
    shard = ring[start:start + lengths[rank]].clone()
    _finish(sharded_laplacian_smooth(shard, sigma, order), rank, out)


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
    _finish(torch.cat([p.detach() for p in params]), rank, out)


# ----------------------------------------------------- torch 2.x engines --
# FSDP2 (fully_shard), ZeroRedundancyOptimizer, torch.distributed.checkpoint; the
# shapes give uneven shards (37 rows over 2 or 4 ranks) and shards shorter than the
# direct route's warm-up (5 and 1 rows: a few elements per rank, some ranks none).

FSDP_STEPS = 4


def make_sharded_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 37), torch.nn.Tanh(), torch.nn.Linear(37, 5), torch.nn.Tanh(),
                               torch.nn.Linear(5, 1)).double()


def make_engine_optimizer(name, params, flatten="tensor"):
    if name == "sgd+smoothing":  # torch's SGD stepping on gradients smoothed by the step pre-hook
        optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)
        torch_mlsgd.register_smoothing(optimizer, 1.0, flatten=flatten)
        return optimizer
    if name == "lsadamw":
        return torch_mlsgd.LSAdamW(params, lr=0.01, sigma=1.0, weight_decay=1e-3, flatten=flatten)
    kwargs = dict(lr=0.05, sigma=1.0, momentum=0.9, weight_decay=1e-3, flatten=flatten)
    if name == "lsgd":
        return torch_mlsgd.LSGD(params, **kwargs)
    return torch_mlsgd.MLSGD(params, seed=5, **kwargs)


def batch_of(step, rank=None, world=None):
    """Step `step`'s global batch, or rank's slice of it."""
    g = torch.Generator().manual_seed(500 + step)
    x = torch.randn(GLOBAL_BATCH, 8, generator=g, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))
    if rank is None:
        return x, y
    per_rank = GLOBAL_BATCH // world
    return x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank]


def _train_engine(model, optimizer, first, steps, rank=None, world=None):
    """Steps [first, first + steps) on the global batches, or on rank's slices of them."""
    for step in range(first, first + steps):
        x, y = batch_of(step, rank, world)
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def train_engine_single(name, flatten, steps=FSDP_STEPS):
    model = make_sharded_model()
    optimizer = make_engine_optimizer(name, model.parameters(), flatten)
    _train_engine(model, optimizer, 0, steps)
    return [p.detach().clone() for p in model.parameters()]


def _fsdp_model(world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    model = make_sharded_model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _full(params):
    return [p.full_tensor().detach().clone() if hasattr(p, "full_tensor") else p.detach().clone() for p in params]


ENGINE_CONFIGS = [(name, flatten) for name in ("lsgd", "mlsgd", "sgd+smoothing", "lsadamw")
                  for flatten in ("tensor", "group")]


def fsdp2_worker(rank, world, init_file, out):
    """Every (optimizer, flatten) configuration in one process group: a fresh FSDP2
    model and optimizer each, trained FSDP_STEPS steps."""
    _init(rank, world, init_file)
    results = {}
    for name, flatten in ENGINE_CONFIGS:
        model = _fsdp_model(world)
        optimizer = make_engine_optimizer(name, model.parameters(), flatten)
        with torch_mlsgd.distributed.count_communication() as count:
            _train_engine(model, optimizer, 0, FSDP_STEPS, rank, world)  # FSDP averages the gradients
        state_types = sorted({type(s["momentum_buffer" if "momentum_buffer" in s else "exp_avg"]).__name__
                              for s in optimizer.state.values()})
        results[name, flatten] = {"params": _full(model.parameters()), "calls": count.calls,
                                  "received": count.received, "state_types": state_types}
    _finish(results, rank, out)


def zero_worker(rank, world, init_file, out):
    from torch.distributed.optim import ZeroRedundancyOptimizer

    _init(rank, world, init_file)
    results = {}
    for name in ("lsgd", "mlsgd"):
        for kind in ("ddp", "zero"):
            model = torch.nn.parallel.DistributedDataParallel(make_sharded_model())
            if kind == "zero":
                cls = torch_mlsgd.LSGD if name == "lsgd" else torch_mlsgd.MLSGD
                extra = {} if name == "lsgd" else {"seed": 5}
                optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=cls, lr=0.05, sigma=1.0,
                                                    momentum=0.9, weight_decay=1e-3, **extra)
            else:
                optimizer = make_engine_optimizer(name, model.parameters())
            _train_engine(model, optimizer, 0, FSDP_STEPS, rank, world)
            results[name, kind] = [p.detach().clone() for p in model.parameters()]
    _finish(results, rank, out)


def _engine(kind, world, name):
    """A model and optimizer of the given engine; every rank trains on the whole global
    batch, so that averaging over 2 or 4 ranks is exact and runs on any number of ranks
    compare with one process (train_engine_single)."""
    if kind == "fsdp2":
        model = _fsdp_model(world)
    else:
        model = torch.nn.parallel.DistributedDataParallel(make_sharded_model())
    return model, make_engine_optimizer(name, model.parameters())


def _full_optimizer_state(optimizer):
    """Every parameter's optimizer state, whole (DTensors gathered), in parameter order."""
    out = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            out.append({k: (v.full_tensor() if hasattr(v, "full_tensor") else v).clone()
                        for k, v in sorted(state.items())})
    return out


def dcp_worker(rank, world, init_file, kind, first, steps, load_from, save_to, out):
    """For LSGD and MLSGD: trains steps [first, first + steps) of `kind` on `world` ranks,
    resuming from the torch.distributed.checkpoint at `load_from`/<name> (when given) and
    saving one at `save_to`/<name>. Saves the final parameters and the whole optimizer
    state just after loading (or saving)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    _init(rank, world, init_file)
    results = {}
    for name in ("lsgd", "mlsgd"):
        model, optimizer = _engine(kind, world, name)
        if load_from:
            model_state, optim_state = get_state_dict(model, optimizer)
            state = {"model": model_state, "optim": optim_state}
            dcp.load(state, checkpoint_id=os.path.join(load_from, name))
            set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
            results[name, "state"] = _full_optimizer_state(optimizer)
        _train_engine(model, optimizer, first, steps)
        if save_to:
            model_state, optim_state = get_state_dict(model, optimizer)
            dcp.save({"model": model_state, "optim": optim_state}, checkpoint_id=os.path.join(save_to, name))
            results[name, "state"] = _full_optimizer_state(optimizer)
        results[name, "params"] = _full(model.parameters())
    _finish(results, rank, out)


def nonfinite_worker(rank, world, init_file, out):
    _init(rank, world, init_file)
    results = {}
    for name in ("lsgd", "mlsgd"):
        model = _fsdp_model(world)
        optimizer = make_engine_optimizer(name, model.parameters())
        x, y = batch_of(0, rank, world)
        torch.nn.functional.mse_loss(model(x), y).backward()
        if rank == 1:
            grad = next(p for p in model.parameters() if p.grad.to_local().numel() > 3).grad.to_local()
            grad.view(-1)[3] = float("nan")  # deep inside this rank's shard, far from its edges
        before = [p.to_local().clone() for p in model.parameters()]
        try:
            optimizer.step()
            error = None
        except torch_mlsgd.distributed.NonFiniteGradientError as e:
            error = str(e)
        unchanged = all(torch.equal(p.to_local(), b) for p, b in zip(model.parameters(), before))
        results[name] = {"error": error, "unchanged": unchanged, "state": len(optimizer.state)}
    _finish(results, rank, out)


def dead_rank_worker(rank, world, init_file, name, out):
    import datetime
    import time

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=20))
    torch.set_num_threads(1)
    model = _fsdp_model(world)
    optimizer = make_engine_optimizer(name, model.parameters())
    x, y = batch_of(0, rank, world)
    torch.nn.functional.mse_loss(model(x), y).backward()
    dist.barrier()
    if rank == 1:
        os._exit(3)  # dies between backward and step
    before = [p.to_local().clone() for p in model.parameters()]
    started = time.monotonic()
    try:
        optimizer.step()
        error = None
    except RuntimeError as e:
        error = str(e)
    elapsed = time.monotonic() - started
    unchanged = all(torch.equal(p.to_local(), b) for p, b in zip(model.parameters(), before))
    torch.save({"error": error, "elapsed": elapsed, "unchanged": unchanged}, os.path.join(out, f"rank{rank}.pt"))
    os._exit(0)  # the process group cannot be shut down cleanly without its peer


DEEPSPEED_STEPS = 4


def deepspeed_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


def deepspeed_optimizer(name, params):
    if name == "lsadamw":
        return torch_mlsgd.LSAdamW(params, lr=0.01, sigma=1.0, flatten="group")
    return torch_mlsgd.LSGD(params, lr=0.1, sigma=1.0, momentum=0.9, flatten="group")


def deepspeed_single(name):
    """The reference of deepspeed_worker: one process, the whole global batch, float32."""
    model = deepspeed_model()
    optimizer = deepspeed_optimizer(name, model.parameters())
    x, y = (t.float() for t in global_batch())
    for _ in range(DEEPSPEED_STEPS):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def deepspeed_worker(rank, world, init_file, out):
    """LSGD and LSAdamW as the client optimizer of DeepSpeed on the CPU (gloo). ZeRO stage 0:
    the engine all-reduces whole gradients and steps ours on them (trained, then compared
    with one process). Stages 1 and 2: DeepSpeed replaces each group's parameters by this
    rank's flat partition; ours refuses to step them (the message is kept)."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), DS_ACCELERATOR="cpu")
    _init(rank, world, init_file)
    import deepspeed

    x, y = (t.float() for t in global_batch())
    local = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    results = {}
    for name in ("lsgd", "lsadamw"):
        for stage in (0, 1, 2):
            model = deepspeed_model()
            config = {"train_micro_batch_size_per_gpu": GLOBAL_BATCH // world, "zero_allow_untested_optimizer": True,
                      "zero_optimization": {"stage": stage}}
            try:
                engine, *_ = deepspeed.initialize(model=model, optimizer=deepspeed_optimizer(name, model.parameters()),
                                                  config=config)
                for _ in range(DEEPSPEED_STEPS):
                    engine.backward(torch.nn.functional.mse_loss(engine(x[local]), y[local]))
                    engine.step()
            except RuntimeError as error:
                results[name, stage] = str(error)
                continue
            results[name, stage] = [p.detach().clone() for p in model.parameters()]
    _finish(results, rank, out)
