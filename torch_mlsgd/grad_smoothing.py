"""Laplacian smoothing for any optimizer: every gradient smoothed in place before the
step, in the style of :func:`torch.nn.utils.clip_grad_norm_`."""

from typing import Any, Iterable, Optional, Union

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from ._validation import FLATTEN_MODES, check_smooth_scalars, check_smoothable

__all__ = ["smooth_grad_", "register_smoothing"]

_PLAIN = (torch.Tensor, torch.nn.Parameter)


def _local_shard(t: Tensor) -> Tensor:
    """What the kernels see of a gradient: a DTensor's local shard, else the tensor."""
    return t.to_local() if type(t) not in _PLAIN and hasattr(t, "to_local") else t


def _check_arguments(sigma: Any, order: Any, flatten: Any, backend: Any, process_group: Optional[Any]) -> None:
    check_smooth_scalars(sigma, order, backend)
    if flatten not in FLATTEN_MODES:
        raise ValueError(f"Invalid flatten value: {flatten!r} (expected 'tensor' or 'group')")
    if process_group is not None and flatten != "group":
        raise ValueError("process_group needs flatten='group': the gradients form this rank's shard of one ring")


@torch.no_grad()
def smooth_grad_(parameters: Union[Tensor, Iterable[Tensor]], sigma: float = 1.0, order: int = 1, *,
                 flatten: str = "tensor", backend: str = "auto", process_group: Optional[Any] = None) -> None:
    r"""Replaces the gradient of every parameter by its Laplacian smoothing, in place:
    :math:`g \leftarrow (I + \sigma (-L)^p)^{-1} g` on the flattened gradient, as
    :class:`torch_mlsgd.LSGD` smooths it, so that any optimizer steps on smoothed
    gradients (``SGD`` after ``smooth_grad_`` is LSGD; ``AdamW`` after it is LS-AdamW).

    Call it between ``backward()`` and ``optimizer.step()``: after
    ``scaler.unscale_(optimizer)`` under ``torch.amp.GradScaler`` (smoothing is linear, so
    it may also come before), and before or after ``clip_grad_norm_`` (smoothing never
    increases a gradient's norm). :func:`register_smoothing` makes it a step pre-hook.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is smoothed;
            parameters without a gradient are skipped.
        sigma: smoothing strength, finite and ``>= 0`` (0 leaves the gradients as they are).
        order: power :math:`p \ge 1` of the Laplacian.
        flatten: ``"tensor"`` smooths each gradient as its own ring; ``"group"`` the
            concatenation of all of them, in order, as one ring.
        backend: ``"auto"``, ``"fft"`` or ``"direct"`` (see :func:`torch_mlsgd.laplacian_smooth`).
        process_group: with ``flatten="group"``, the gradients on this rank are its shard of
            one ring spread over the ranks of ``process_group`` in rank order (ZeRO-style
            sharding), smoothed exactly as a whole. DTensor gradients (FSDP2's
            ``fully_shard``) need nothing: their global rings are smoothed exactly.

    Every gradient is smoothed once (a parameter listed twice, or gradients that are one
    tensor, are smoothed once) by one call of ``torch.ops.mlsgd.laplacian_smooth_list_``
    (plus one halo exchange for sharded rings); autograd sees the gradients change, as for
    any in-place op. NaN and Inf flow into the smoothed values (so that ``GradScaler`` still
    sees them and skips the step). Bad arguments raise ``ValueError`` or ``TypeError``
    naming the value before any gradient changes; with ``process_group=`` every rank must
    call it (a rank without gradients takes part in the exchange with an empty shard).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    seen = set()
    params = []
    for p in parameters:
        if p.grad is not None and id(p.grad) not in seen:
            seen.add(id(p.grad))
            params.append(p)
    _check_arguments(sigma, order, flatten, backend, process_group)
    grads = [p.grad for p in params]
    for grad in grads:
        check_smoothable(grad, "smooth_grad_", "gradient")
    if flatten == "group":
        for grad in grads[1:]:
            if grad.dtype != grads[0].dtype or grad.device != grads[0].device:
                raise ValueError(
                    "flatten='group' smooths the gradients as one vector, so they must share one dtype and device; "
                    f"got {grads[0].dtype} on {grads[0].device} and {grad.dtype} on {grad.device}"
                )
    if sigma == 0:
        return
    if backend == "direct":  # the route's limits, for every dtype and device, before any write
        for like in {(g.dtype, g.device): g for g in grads}.values():
            torch.ops.mlsgd.check_direct_route(_local_shard(like), float(sigma), int(order))
    if not grads:
        if process_group is not None and parameters:  # the exchange is collective: take part
            from .distributed import sharded_laplacian_smooth

            sharded_laplacian_smooth(parameters[0].detach().new_empty(0), sigma, order, group=process_group)
        return
    if process_group is not None or not all(type(p) in _PLAIN for p in params):
        from .distributed import check_not_sharded, local_shard, presmooth_sharded

        for p in params:
            if type(p) not in _PLAIN:
                check_not_sharded(p, flatten, process_group)
        smoothed = presmooth_sharded(params, grads, [sigma] * len(grads), order, flatten, process_group,
                                     check_finite=False)
        for i, s in smoothed.items():
            local_shard(grads[i]).copy_(s)
        grads = [local_shard(g) for i, g in enumerate(grads) if i not in smoothed]  # whole on every rank
    if grads:
        torch.ops.mlsgd.laplacian_smooth_list_.default(grads, float(sigma), int(order), flatten, backend)
    if not torch.compiler.is_compiling():  # (compiled graphs track their mutations themselves)
        torch.autograd.graph.increment_version([p.grad for p in params])


def register_smoothing(optimizer: torch.optim.Optimizer, sigma: float = 1.0, order: int = 1, *,
                       flatten: str = "tensor", backend: str = "auto",
                       process_group: Optional[Any] = None) -> RemovableHandle:
    """Makes ``optimizer`` step on Laplacian-smoothed gradients: a step pre-hook that runs
    :func:`smooth_grad_` on each of its parameter groups (``flatten="group"``: one ring per
    group) before every ``step()``, for training loops a framework owns. Returns the hook's
    handle; ``handle.remove()`` restores the plain optimizer.

    Under ``torch.amp.GradScaler`` the hook runs inside ``scaler.step(optimizer)``: after the
    unscale and only for steps whose gradients are finite for optimizers the scaler unscales;
    on the scaled gradients of every step for those that unscale themselves (``fused=True``),
    which is the same, smoothing being linear (an inf or NaN stays one, and the step is
    skipped). The arguments are those of
    :func:`smooth_grad_`, checked here (``ValueError``/``TypeError``), not at the first step.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"register_smoothing needs a torch.optim.Optimizer, got {type(optimizer).__name__}")
    _check_arguments(sigma, order, flatten, backend, process_group)

    def smooth_before_step(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for group in opt.param_groups:
            smooth_grad_(group["params"], sigma, order, flatten=flatten, backend=backend, process_group=process_group)

    return optimizer.register_step_pre_hook(smooth_before_step)
