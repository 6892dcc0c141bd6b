"""LSGD and MLSGD under torch.distributed (gloo, CPU), in processes the tests start."""


import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import torch_mlsgd

import distributed_workers as workers

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")


def spawn(fn, world, tmp_path, *args):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    init_file = tmp_path / "init"
    mp.spawn(fn, args=(world, str(init_file), *args, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(world)]


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("name", ["lsgd", "mlsgd", "sgd+smoothing", "lsadamw"])
def test_ddp_ranks_agree_with_each_other_and_with_one_process(tmp_path, world, name):
    results = spawn(workers.ddp_worker, world, tmp_path, name)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)  # every rank took exactly the same steps
    for a, b in zip(results[0], workers.train_single(name)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize(
    "lengths, sigma, order, dtype",
    [
        ([5000, 3000, 4000, 2000], 1.0, 1, "float64"),  # every shard holds a halo: neighbours' edges only
        ([5000, 3000, 4000, 2000], 30.0, 2, "float32"),
        ([6, 0, 9000, 14], 1.0, 1, "float64"),  # short and empty shards: the whole ring is gathered
    ],
)
def test_sharded_smoothing_equals_one_process(tmp_path, world, lengths, sigma, order, dtype):
    lengths = lengths[:world] if world == 4 else [sum(lengths[:2]), sum(lengths[2:])]
    pieces = spawn(workers.shard_worker, world, tmp_path, lengths, sigma, order, dtype)
    ring = torch.randn(sum(lengths), generator=torch.Generator().manual_seed(7), dtype=getattr(torch, dtype))
    expected = torch_mlsgd.laplacian_smooth(ring.double(), sigma, order)
    tol = 1e-12 if dtype == "float64" else 1e-5
    torch.testing.assert_close(torch.cat(pieces).double(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["lsgd", "mlsgd", "sgd+smoothing", "lsadamw"])
def test_optimizer_with_process_group_smooths_the_global_ring(tmp_path, name):
    lengths = [3000, 5000, 4000]
    pieces = spawn(workers.sharded_optimizer_worker, 3, tmp_path, name, lengths)
    full = torch.randn(sum(lengths), generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    param = full.clone().requires_grad_()
    optimizer = workers.make_optimizer(name, [param])  # one process, the whole vector, one ring
    for _ in range(workers.STEPS):
        param.grad = torch.sin(3 * param.detach()) + 0.5 * param.detach()
        optimizer.step()
    torch.testing.assert_close(torch.cat(pieces), param.detach(), rtol=1e-11, atol=1e-12)


def test_shards_of_other_tensors_are_refused():
    class FlatParameter(torch.nn.Parameter):  # stands in for FSDP's, matched by name
        pass

    flat = FlatParameter(torch.zeros(10))
    flat.grad = torch.ones(10)
    with pytest.raises(ValueError, match="FSDP FlatParameter"):
        torch_mlsgd.LSGD([flat], lr=0.1).step()
    with pytest.raises(ValueError, match="process_group needs flatten='group'"):
        torch_mlsgd.LSGD([torch.zeros(3, requires_grad=True)], lr=0.1, process_group=object())
