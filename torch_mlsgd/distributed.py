"""Smoothing rings that are spread over processes (ZeRO-, FSDP- and DTensor-style sharding).

When each rank holds pieces of a vector, smoothing every piece on its own silently
changes the method: the ring is the whole vector. The functions here smooth the global
ring exactly while exchanging only halos: the direct route needs the
``mlsgd::direct_warmup(sigma, order, dtype)`` ring elements on each side of a piece
(docs/design.md §2, §4), so every rank contributes the first and last ``warmup`` elements
of its pieces to one all-gather and then smooths its own pieces alone
(``mlsgd::laplacian_smooth_shard``). Pieces shorter than the warm-up take their halos from
several neighbours; a ring shorter than the warm-up wraps around, as in one process.

A ring is described by its *layout*: the sequence, in ring order, of its pieces as
``(owner rank, number of elements)``, the same on every rank. Several rings share one
exchange. Used by :class:`torch_mlsgd.LSGD` and :class:`torch_mlsgd.MLSGD` for DTensor
parameters (``fully_shard``) and for ``process_group=``; the building blocks are public.
"""

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["sharded_laplacian_smooth", "smooth_rings", "count_communication", "CommunicationCount",
           "NonFiniteGradientError"]

Layout = Sequence[Tuple[int, int]]


class NonFiniteGradientError(RuntimeError):
    """A rank's gradient held NaN or Inf: every rank raises it, and none has changed anything."""


@dataclass
class CommunicationCount:
    """What the halo exchanges inside :func:`count_communication` moved, as seen by this
    rank: ``sent`` bytes it contributed and ``received`` bytes it got from the other
    ranks (collectives counted by their payload, whatever algorithm carries them)."""

    calls: int = 0
    sent: int = 0
    received: int = 0
    log: List[Tuple[str, int, int]] = field(default_factory=list)


_counters: List[CommunicationCount] = []


@contextlib.contextmanager
def count_communication() -> Iterator[CommunicationCount]:
    """Counts the bytes of torch_mlsgd's own collectives (a diagnostic; the tests check the
    docs/distributed.md's communication volumes with it)."""
    count = CommunicationCount()
    _counters.append(count)
    try:
        yield count
    finally:
        _counters.remove(count)


def _all_gather(tensor: Tensor, group, what: str) -> List[Tensor]:
    world = dist.get_world_size(group)
    out = [torch.empty_like(tensor) for _ in range(world)]
    try:
        dist.all_gather(out, tensor, group=group)
    except Exception as error:  # gloo raises RuntimeError, NCCL DistBackendError
        raise RuntimeError(
            f"torch_mlsgd: the {what} all-gather over {world} ranks failed, so no parameter was changed "
            f"on this rank (another rank may have died, or missed the collective until the process group's "
            f"timeout): {error}"
        ) from error
    nbytes = tensor.numel() * tensor.element_size()
    for count in _counters:
        count.calls += 1
        count.sent += nbytes
        count.received += nbytes * (world - 1)
        count.log.append((what, nbytes, nbytes * (world - 1)))
    return out


def _halo(layout: Layout, heads: List[Tensor], tails: List[Tensor], index: int, warmup: int,
          forward: bool) -> Tensor:
    """The `warmup` ring elements after (forward) or before piece `index`, from the
    neighbouring pieces' heads or tails, walking around the ring as often as needed."""
    parts: List[Tensor] = [heads[index][:0]]
    need = warmup
    j = index
    while need > 0:
        j = (j + 1) % len(layout) if forward else (j - 1) % len(layout)
        edge = heads[j] if forward else tails[j]
        if edge.numel() == 0:
            continue
        take = min(need, edge.numel())
        parts.append(edge[:take] if forward else edge[edge.numel() - take:])
        need -= take
    return torch.cat(parts if forward else parts[::-1])  # the empty start piece keeps dtype and device


def smooth_rings(rings: Sequence[Tuple[Layout, Sequence[Tensor]]], sigma: Union[float, Sequence[float]],
                 order: int = 1, *, group: Optional[Any] = None, check_finite: bool = True) -> List[List[Tensor]]:
    """Smooths rings spread over the ranks of ``group``, exactly, exchanging halos.

    Args:
        rings: per ring, its layout ``[(owner rank, length), ...]`` in ring order (the same
            on every rank) and this rank's pieces of it, in ring order, as 1-D tensors
            (one per layout entry this rank owns, empty ones included). Every piece of
            every ring has one dtype and device.
        sigma, order: the smoothing, as for :func:`torch_mlsgd.laplacian_smooth`; ``sigma``
            may also give one value per ring.
        group: the process group (default: the world).
        check_finite: when any rank's pieces hold NaN or Inf, raise
            :class:`NonFiniteGradientError` on every rank (they agree through the same
            all-gather) instead of smoothing.

    Returns:
        Per ring, this rank's smoothed pieces, in the order given. Every rank of ``group``
        must call this with the same layouts, sigma, order and dtype.
    """
    from .functional import laplacian_smooth

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("torch_mlsgd: smoothing a sharded ring needs an initialised torch.distributed "
                           "process group")
    rank = dist.get_rank(group)
    world = dist.get_world_size(group)
    pieces = [p.reshape(-1) for _, ring in rings for p in ring]
    if not pieces and not rings:
        return []
    reference = next(iter(pieces), None)
    dtype = reference.dtype if reference is not None else torch.get_default_dtype()
    device = reference.device if reference is not None else torch.device("cpu")
    for (layout, local) in rings:
        owned = [n for owner, n in layout if owner == rank]
        if [p.numel() for p in local] != owned:
            raise ValueError(f"torch_mlsgd: rank {rank} holds pieces of {[p.numel() for p in local]} elements, "
                             f"but the ring's layout gives it {owned}")
        if any(not 0 <= owner < world for owner, _ in layout):
            raise ValueError(f"torch_mlsgd: a ring's layout names a rank outside 0..{world - 1}: {list(layout)}")

    sigmas = [float(sigma)] * len(rings) if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
    if len(sigmas) != len(rings):
        raise ValueError(f"torch_mlsgd: {len(sigmas)} sigma values for {len(rings)} rings")
    # Each ring's halo; -1 (direct_warmup's answer) marks a ring the direct route cannot
    # take in pieces (sigma beyond its warm-up limit, an order above its maximum): its
    # pieces are gathered whole.
    halos = [0 if s == 0 else torch.ops.mlsgd.direct_warmup(s, int(order), dtype) for s in sigmas]
    whole = [h < 0 for h in halos]
    longest = max((n for layout, _ in rings for _, n in layout), default=0)
    ring_edges = [longest if w else h for w, h in zip(whole, halos)]

    # One all-gather: every rank's finite flag, then the heads and tails (up to the
    # ring's edge length) of every piece it owns, in ring order, padded to the longest rank.
    sizes = [1 + sum(2 * min(n, e) for (layout, _), e in zip(rings, ring_edges) for owner, n in layout if owner == r)
             for r in range(world)]
    packed = torch.zeros(max(sizes), dtype=dtype, device=device)
    offset = 1
    finite = True
    for (_, local), e in zip(rings, ring_edges):
        for p in local:
            p = p.reshape(-1)
            if check_finite and p.numel() and not bool(torch.isfinite(p).all()):
                finite = False
            k = min(p.numel(), e)
            packed[offset:offset + k] = p[:k]
            packed[offset + k:offset + 2 * k] = p[p.numel() - k:]
            offset += 2 * k
    packed[0] = 1.0 if finite else 0.0
    if all(s == 0 for s in sigmas) and not check_finite:
        return [[p.clone() for p in local] for _, local in rings]
    gathered = _all_gather(packed, group, "halo")
    bad = [r for r in range(world) if float(gathered[r][0]) != 1.0]
    if check_finite and bad:
        raise NonFiniteGradientError(
            f"torch_mlsgd: the gradients of rank(s) {bad} hold NaN or Inf; no rank changed its parameters "
            "(skip the step, e.g. with a GradScaler, or check torch.isfinite before step())")

    cursor = [1] * world
    out: List[List[Tensor]] = []
    for (layout, local), s, halo, e, gathered_whole in zip(rings, sigmas, halos, ring_edges, whole):
        heads: List[Tensor] = []
        tails: List[Tensor] = []
        for owner, n in layout:
            k = min(n, e)
            start = cursor[owner]
            heads.append(gathered[owner][start:start + k])
            tails.append(gathered[owner][start + k:start + 2 * k])
            cursor[owner] += 2 * k
        smoothed: List[Tensor] = []
        mine = iter(local)
        position = 0
        for index, (owner, n) in enumerate(layout):
            if owner == rank:
                piece = next(mine).reshape(-1)
                if n == 0 or s == 0:
                    smoothed.append(piece.clone())
                elif gathered_whole:  # the heads hold whole pieces: smooth the rebuilt ring here
                    smoothed.append(laplacian_smooth(torch.cat(heads), s, order)[position:position + n])
                else:
                    left = _halo(layout, heads, tails, index, halo, forward=False)
                    right = _halo(layout, heads, tails, index, halo, forward=True)
                    smoothed.append(torch.ops.mlsgd.laplacian_smooth_shard(piece, left, right, s, int(order)))
            position += n
        out.append(smoothed)
    return out


@torch.no_grad()
def sharded_laplacian_smooth(shard: Tensor, sigma: float, order: int = 1, *, group: Optional[Any] = None,
                             check_finite: bool = False) -> Tensor:
    r"""This rank's part of :math:`S(v)`, where the ring :math:`v` is the concatenation of
    every rank's ``shard`` (flattened, row-major) in rank order.

    Shards may differ in length and be empty; every rank of ``group`` must call this with
    the same ``sigma``, ``order`` and dtype. Each rank receives only the first and last
    ``direct_warmup`` elements of the other shards (one all-gather, after one all-gather
    of the shard lengths) and smooths its own shard alone; the result equals smoothing the
    whole vector in one process, to the direct route's accuracy. With ``check_finite``,
    a NaN or Inf in any rank's shard raises :class:`NonFiniteGradientError` on every rank.
    Not differentiable.
    """
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sharded_laplacian_smooth needs an initialised torch.distributed process group")
    flat = shard.reshape(-1)
    lengths = [int(n) for n in _all_gather(torch.tensor([flat.numel()], dtype=torch.int64, device=flat.device),
                                           group, "shard lengths")]
    layout = list(enumerate(lengths))
    (smoothed,), = smooth_rings([(layout, [flat])], sigma, order, group=group, check_finite=check_finite)
    return smoothed.view_as(shard)


# ------------------------------------------------------------------ DTensor --

_PLAIN = (torch.Tensor, torch.nn.Parameter)  # types that cannot be shards of a larger tensor


def local_shard(t: Optional[Tensor]) -> Optional[Tensor]:
    """A DTensor's local shard (a view: updating it updates the DTensor), else `t`."""
    return t.to_local() if t is not None and type(t) not in _PLAIN and hasattr(t, "to_local") else t


def like_param(buffer: Tensor, param: Tensor) -> Tensor:
    """A new momentum buffer computed on `param`'s local shard, as a DTensor laid out like
    `param` when it is one (optimizer state of DTensor parameters is DTensors)."""
    if type(param) in _PLAIN or not hasattr(param, "device_mesh"):
        return buffer
    from torch.distributed.tensor import DTensor

    return DTensor.from_local(buffer, param.device_mesh, param.placements, run_check=False, shape=param.shape,
                              stride=param.stride())


def check_not_sharded(p: Tensor, flatten: str, process_group: Optional[Any]) -> None:
    """Refuses parameters that are shards of a larger tensor where the optimizer cannot
    smooth their ring exactly: smoothing each shard alone would silently change the method."""
    kind = type(p).__name__
    if kind == "DTensor":
        if process_group is not None:
            raise ValueError("process_group= is for plain tensors that are shards of a ring; DTensor parameters "
                             "carry their own device mesh: drop process_group=")
        dtensor_piece(p)  # raises for placements LSGD cannot smooth exactly
        return
    if kind == "FlatParameter" and (flatten != "group" or process_group is None):
        raise ValueError(
            "LSGD got an FSDP FlatParameter, a per-rank shard of many parameters; smoothing it alone changes the "
            "method. Pass flatten='group' and process_group=<the FSDP process group> to smooth the global flat "
            "parameter as one ring (FSDP's padding then joins the ring), or use FSDP(use_orig_params=True) "
            "with a group per original parameter."
        )


def dtensor_piece(p: Tensor) -> Optional[Tuple[Layout, Any]]:
    """For a DTensor parameter: its flattened global ring's layout over the ranks of its
    mesh, and that mesh's process group; None when every rank holds the whole tensor
    (Replicate). Raises for placements whose shards are not contiguous pieces of the
    flattened tensor (anything but Shard(0) on a one-dimensional mesh)."""
    from torch.distributed.tensor import Replicate, Shard

    placements = tuple(p.placements)
    if all(isinstance(x, Replicate) for x in placements):
        return None
    if p.device_mesh.ndim != 1 or len(placements) != 1 or not (isinstance(placements[0], Shard) and
                                                               placements[0].dim == 0):
        raise ValueError(
            f"torch_mlsgd: LSGD smooths DTensor parameters sharded as Shard(0) on a one-dimensional mesh "
            f"(fully_shard's layout) or replicated; got placements {placements} on a {p.device_mesh.ndim}-D "
            "mesh, whose shards are not contiguous pieces of the flattened parameter")
    world = p.device_mesh.size()
    rows = p.shape[0] if p.dim() else 1
    row = p.numel() // rows if rows else 0
    chunk = -(-rows // world) if rows else 0  # torch.chunk's split, as Shard(0) and fully_shard use
    layout = []
    for r in range(world):
        start = min(r * chunk, rows)
        stop = min(start + chunk, rows)
        layout.append((r, (stop - start) * row))
    return layout, p.device_mesh.get_group()


def presmooth_sharded(params: Sequence[Tensor], grads: Sequence[Tensor], sigmas: Sequence[float], order: int,
                      flatten: str, process_group: Optional[Any], check_finite: bool = True) -> Dict[int, Tensor]:
    """The smoothed gradients (this rank's local shards) of the parameters of one group
    whose rings are spread over ranks, keyed by their index in `params`: all of them
    with ``process_group=`` (the group's gradients are this rank's piece of one ring), the
    Shard(0) DTensors otherwise. Replicated DTensors and plain tensors are left out: every
    rank holds them whole and smooths them alone. Every ring of the group goes through one
    exchange per process group, before anything changes; a non-finite gradient on any rank
    raises NonFiniteGradientError on all of them (with ``check_finite``; otherwise NaN and
    Inf flow into the smoothed values, as they do in one process)."""
    if process_group is not None:
        local = torch.cat([g.reshape(-1) for g in grads])
        smoothed = sharded_laplacian_smooth(local, sigmas[0], order, group=process_group, check_finite=check_finite)
        sizes = [g.numel() for g in grads]
        return {i: piece.view_as(g) for i, (piece, g) in enumerate(zip(smoothed.split(sizes), grads))}

    pieces = {}
    for i, p in enumerate(params):
        if type(p).__name__ == "DTensor":
            info = dtensor_piece(p)
            if info is not None:
                pieces[i] = info
    if not pieces:
        return {}
    if flatten == "group":
        if len(pieces) != len(params):
            raise ValueError(
                "torch_mlsgd: flatten='group' over parameters of which only some are sharded DTensors: the group's "
                "ring would be split over the ranks for some parameters and whole for others; put them in "
                "separate parameter groups")
        groups = {id(g) for _, g in pieces.values()}
        if len(groups) != 1:
            raise ValueError("torch_mlsgd: flatten='group' over DTensors on different device meshes")
        layout = [entry for i in range(len(params)) for entry in pieces[i][0]]
        local = [grads[i].to_local().reshape(-1) for i in range(len(params))]
        (smoothed,) = smooth_rings([(layout, local)], sigmas[0], order, group=pieces[0][1],
                                   check_finite=check_finite)
        return {i: s.view_as(grads[i].to_local()) for i, s in enumerate(smoothed)}

    # flatten="tensor": one ring per parameter; one exchange per (process group, dtype, device).
    batches: Dict[Tuple[int, torch.dtype, torch.device], List[int]] = {}
    for i, (_, g) in pieces.items():
        local = grads[i].to_local()
        batches.setdefault((id(g), local.dtype, local.device), []).append(i)
    out: Dict[int, Tensor] = {}
    for members in batches.values():
        rings = [(pieces[i][0], [grads[i].to_local().reshape(-1)]) for i in members]
        smoothed = smooth_rings(rings, [sigmas[i] for i in members], order, group=pieces[members[0]][1],
                                check_finite=check_finite)
        for i, (s,) in zip(members, smoothed):
            out[i] = s.view_as(grads[i].to_local())
    return out
