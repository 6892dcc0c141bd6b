"""LSGD and MLSGD under torch 2.x's sharding engines (gloo, CPU): FSDP2 (fully_shard,
DTensor parameters), ZeroRedundancyOptimizer, torch.distributed.checkpoint resharding,
and what happens when a rank's gradient is non-finite or a rank dies.

torch 1.13 has none of these engines (no fully_shard, no DTensor, no
torch.distributed.checkpoint.state_dict): skipped there, run on the PyPI torch leg.
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import distributed_workers as workers

try:
    from torch.distributed.checkpoint.state_dict import get_state_dict  # noqa: F401
    from torch.distributed.fsdp import fully_shard  # noqa: F401
    HAVE_ENGINES = dist.is_available() and dist.is_gloo_available()
except ImportError:
    HAVE_ENGINES = False

pytestmark = pytest.mark.skipif(not HAVE_ENGINES, reason=f"needs torch >= 2.6 with fully_shard, DTensor and "
                                                         f"torch.distributed.checkpoint (this is {torch.__version__})")


def spawn(fn, world, directory, *args):
    out = directory / f"out-{fn.__name__}-{world}"
    out.mkdir(parents=True, exist_ok=True)
    init_file = directory / f"init-{fn.__name__}-{world}"
    mp.spawn(fn, args=(world, str(init_file), *args, str(out)), nprocs=world, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module", params=[2, 4], ids=lambda world: f"{world}ranks")
def fsdp2_runs(request, tmp_path_factory):
    """Every (optimizer, flatten) configuration trained with FSDP2 on 2 and 4 ranks:
    one process group per world size (spawning is what costs)."""
    world = request.param
    return world, spawn(workers.fsdp2_worker, world, tmp_path_factory.mktemp("fsdp2"))


@pytest.mark.parametrize("name, flatten", workers.ENGINE_CONFIGS)
def test_fsdp2_equals_one_process(fsdp2_runs, name, flatten):
    # Uneven shards (37 rows over 2 or 4 ranks), shards shorter than the warm-up and
    # empty ones (5 and 1 rows), with momentum and weight decay.
    _, results = fsdp2_runs
    expected = workers.train_engine_single(name, flatten)
    for r in results:
        for a, b in zip(r[name, flatten]["params"], expected):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        assert r[name, flatten]["state_types"] == ["DTensor"]  # the state of DTensor parameters is DTensors
        # One halo exchange per step (flatten="tensor": all parameters' rings share it).
        assert r[name, flatten]["calls"] == workers.FSDP_STEPS


def test_halo_exchange_moves_the_bytes_the_readme_states(fsdp2_runs):
    # docs/distributed.md ("Scale"): per step and rank, one all-gather of
    # 1 + sum over its pieces of 2 min(piece, K) elements, padded to the longest rank, of
    # which it receives world - 1 copies; K = direct_warmup(sigma, order, dtype).
    world, results = fsdp2_runs
    warmup = torch.ops.mlsgd.direct_warmup(1.0, 1, torch.float64)
    per_rank = [1] * world
    for p in workers.make_sharded_model().parameters():
        rows = p.shape[0]
        row = p.numel() // rows
        chunk = -(-rows // world)  # torch.chunk's rows per rank, the last ones short or empty
        for r in range(world):
            n = row * max(0, min(rows, (r + 1) * chunk) - min(rows, r * chunk))
            per_rank[r] += 2 * min(n, warmup)
    payload = max(per_rank) * 8  # float64
    for r in results:
        assert r["lsgd", "tensor"]["received"] == workers.FSDP_STEPS * (world - 1) * payload


def test_zero_redundancy_optimizer_equals_ddp(tmp_path):
    for r in spawn(workers.zero_worker, 2, tmp_path):
        for name in ("lsgd", "mlsgd"):
            for a, b in zip(r[name, "zero"], r[name, "ddp"]):
                assert torch.equal(a, b)


@pytest.mark.parametrize("kind, saved_on, resumed_on", [("ddp", 2, 4), ("fsdp2", 2, 4), ("fsdp2", 4, 2)])
def test_dcp_checkpoint_resharded_continues_the_run(tmp_path, kind, saved_on, resumed_on):
    checkpoint = str(tmp_path / "checkpoint")
    saved = spawn(workers.dcp_worker, saved_on, tmp_path / "save", kind, 0, 3, "", checkpoint)
    resumed = spawn(workers.dcp_worker, resumed_on, tmp_path / "resume", kind, 3, 3, checkpoint, "")
    for name in ("lsgd", "mlsgd"):
        # Every rank of the new world holds exactly the state that was saved: the
        # momentum buffers (and MLSGD's step) bit for bit.
        for r in resumed:
            for before, after in zip(saved[0][name, "state"], r[name, "state"]):
                assert before.keys() == after.keys()
                for key in before:
                    assert torch.equal(before[key], after[key]), (name, key)
        # And the continuation matches an uninterrupted run (one process: every rank
        # trains on the whole batch, so averaging over the ranks is exact).
        uninterrupted = workers.train_engine_single(name, "tensor", steps=6)
        for r in resumed:
            for a, b in zip(r[name, "params"], uninterrupted):
                if kind == "ddp":
                    assert torch.equal(a, b)
                else:
                    # FSDP2 cuts every ring into per-rank pieces; the halo exchange is
                    # exact to the direct route's truncation (1e-17 relative), so a run
                    # agrees with one process to rounding, not bit for bit.
                    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_a_non_finite_gradient_on_one_rank_stops_every_rank(tmp_path):
    for r in spawn(workers.nonfinite_worker, 2, tmp_path):
        for name in ("lsgd", "mlsgd"):
            assert r[name]["error"] is not None, name
            assert "rank(s) [1]" in r[name]["error"] and "NaN or Inf" in r[name]["error"]
            assert r[name]["unchanged"] and r[name]["state"] == 0


def test_a_dead_rank_leaves_the_others_a_clear_error(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    context = mp.spawn(workers.dead_rank_worker, args=(2, str(tmp_path / "init"), "lsgd", str(out)), nprocs=2,
                       join=False)
    for process in context.processes:
        process.join(timeout=120)
    assert [p.exitcode for p in context.processes] == [0, 3]
    r = torch.load(out / "rank0.pt", weights_only=False)
    assert r["error"] is not None and "no parameter was changed" in r["error"]
    assert r["unchanged"] and r["elapsed"] < 60


def test_deepspeed_zero_partitions_are_refused_and_stage_0_equals_one_process(tmp_path):
    """DeepSpeed ZeRO-1/2 hand the optimizer one flat partition of each group per rank:
    smoothing that would not be the method, so ours refuses to step it, with a message
    naming the engine. Stage 0 (whole gradients, all-reduced) trains as one process does."""
    pytest.importorskip("deepspeed")
    for r in spawn(workers.deepspeed_worker, 2, tmp_path):
        for name in ("lsgd", "lsadamw"):
            for a, b in zip(r[name, 0], workers.deepspeed_single(name)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
            for stage in (1, 2):
                assert "was never given" in r[name, stage] and "DeepSpeed ZeRO" in r[name, stage], r[name, stage]
