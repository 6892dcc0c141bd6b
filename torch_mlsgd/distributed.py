"""Smoothing a ring that is split across processes (ZeRO-1/FSDP-style sharding).

When each rank holds one contiguous piece of a vector, smoothing every piece on its own
silently changes the method: the ring is the whole vector. :func:`sharded_laplacian_smooth`
smooths the global ring exactly, exchanging only halos: the direct route needs the
``mlsgd::direct_warmup(sigma, order, dtype)`` elements on each side of a shard (DESIGN.md
section 1), which ranks share with one all-gather. ``LSGD(..., flatten="group",
process_group=pg)`` uses it for the ring formed by the group's gradients on every rank.
"""

from typing import Any, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["sharded_laplacian_smooth"]


def _all_gather(tensor: Tensor, group) -> List[Tensor]:
    out = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, tensor, group=group)
    return out


@torch.no_grad()
def sharded_laplacian_smooth(shard: Tensor, sigma: float, order: int = 1, *, group: Optional[Any] = None) -> Tensor:
    r"""This rank's part of :math:`S(v)`, where the ring :math:`v` is the concatenation of
    every rank's ``shard`` (flattened, row-major) in rank order.

    Shards may differ in length and be empty; every rank of ``group`` must call this with
    the same ``sigma``, ``order`` and dtype. When every shard holds at least the warm-up
    length, each rank receives only its neighbours' edges and runs the direct route on its
    own shard; otherwise all shards are gathered and the whole ring is smoothed on every
    rank. Either way the result equals smoothing the whole vector in one process, to the
    direct route's accuracy. Not differentiable.
    """
    from .functional import laplacian_smooth

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sharded_laplacian_smooth needs an initialised torch.distributed process group")
    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    flat = shard.reshape(-1)
    lengths = [int(n) for n in _all_gather(torch.tensor([flat.numel()], dtype=torch.int64), group)]
    total = sum(lengths)
    if sigma == 0 or total == 0:
        return shard.clone()
    # -1: a sigma so large that only the FFT route applies it; the ring is gathered.
    halo = torch.ops.mlsgd.direct_warmup(float(sigma), int(order), flat.dtype)
    if 0 <= halo <= min(lengths) and order <= 64:
        heads = _all_gather(flat[:halo].contiguous(), group)
        tails = _all_gather(flat[-halo:].contiguous(), group)
        smoothed = torch.ops.mlsgd.laplacian_smooth_shard(flat, tails[(rank - 1) % world], heads[(rank + 1) % world],
                                                          float(sigma), int(order))
        return smoothed.view_as(shard)
    padded = torch.zeros(max(lengths), dtype=flat.dtype, device=flat.device)
    padded[:flat.numel()] = flat
    ring = torch.cat([piece[:n] for piece, n in zip(_all_gather(padded, group), lengths)])
    start = sum(lengths[:rank])
    return laplacian_smooth(ring, sigma, order)[start:start + flat.numel()].view_as(shard)
