"""MLSGD: LSGD whose smoothing strength follows a schedule."""

import math
from itertools import chain
from typing import Any, Dict, List, Optional, Union

import torch
from torch import Tensor

from ._validation import check_lsgd_hyperparameters
from .lsgd import LSGD, _takes_fused_kernel

__all__ = ["MLSGD", "scheduled_sigma", "SCHEDULES"]

#: The sigma schedules MLSGD accepts.
SCHEDULES = ("random", "cyclic", "constant", "decay", "growth")


def scheduled_sigma(step: int, *, schedule: str = "random", sigma: float = 1.0, sigma_min: float = 0.0,
                    sigma_max: Optional[float] = None, period: int = 100, seed: int = 0) -> float:
    r"""The smoothing strength :math:`\sigma_k` MLSGD uses at step ``k = step``.

    - ``"random"``: uniform in ``[sigma_min, sigma_max)``, drawn independently for every
      step from a counter-based generator keyed by ``(seed, step)``;
    - ``"cyclic"``: a linear sweep from ``sigma_min`` to ``sigma_max`` over ``period`` steps,
      repeated;
    - ``"constant"``: ``sigma`` (plain LSGD);
    - ``"decay"``: ``sigma / (1 + step / period)``; ``"growth"``: ``sigma * (1 + step / period)``.

    ``sigma_max`` defaults to ``2 * sigma``. The same function (one C++ implementation)
    drives the Python and the LibTorch optimizer, so both draw the same sequence.

    Raises:
        ValueError: an unknown schedule, a negative ``step``, ``period`` or ``seed``, or a
            ``sigma``/``sigma_min``/``sigma_max`` that is negative, not finite or out of order.
    """
    _check_schedule_values(step, schedule, sigma, sigma_min, sigma_max, period, seed)
    return torch.ops.mlsgd.scheduled_sigma(schedule, float(sigma), float(sigma_min),
                                           None if sigma_max is None else float(sigma_max), int(period),
                                           int(seed), int(step))


def _check_schedule_values(step, schedule, sigma, sigma_min, sigma_max, period, seed) -> None:
    # The words of the op's own checks (csrc/core/checks.h), raised as ValueError.
    if schedule not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {schedule!r} (expected one of {', '.join(SCHEDULES)})")
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"Invalid sigma value: {sigma} (must be finite and >= 0)")
    if not math.isfinite(sigma_min) or sigma_min < 0:
        raise ValueError(f"Invalid sigma_min value: {sigma_min} (must be finite and >= 0)")
    top = 2.0 * sigma if sigma_max is None else sigma_max
    if not math.isfinite(top) or top < sigma_min:
        raise ValueError(f"Invalid sigma_max value: {top} (must be finite and >= sigma_min = {sigma_min})")
    if period < 1:
        raise ValueError(f"Invalid period value: {period} (must be >= 1)")
    if seed < 0:
        raise ValueError(f"Invalid seed value: {seed} (must be >= 0)")
    if step < 0:
        raise ValueError(f"Invalid step: {step} (must be >= 0)")


def _check_schedule(group: Dict[str, Any]) -> None:
    if group["schedule"] not in SCHEDULES:
        raise ValueError(f"Invalid schedule: {group['schedule']!r} (expected one of {', '.join(SCHEDULES)})")
    for key in ("period", "seed"):
        if isinstance(group[key], bool) or not isinstance(group[key], int):
            raise TypeError(f"{key} must be an integer, got {type(group[key]).__name__}")
    scheduled_sigma(0, schedule=group["schedule"], sigma=group["sigma"], sigma_min=group["sigma_min"],
                    sigma_max=group["sigma_max"], period=group["period"], seed=group["seed"])


class MLSGD(LSGD):
    r"""Modified LSGD: LSGD whose smoothing strength changes from step to step.

    Step :math:`k` of a parameter is an :class:`LSGD` step with
    :math:`\sigma = \sigma_k` from :func:`scheduled_sigma`, where :math:`k` counts the
    steps that parameter has taken (kept in ``optimizer.state[p]["step"]``, so a
    checkpoint resumes the same sequence). With ``flatten="group"`` the group's ring
    uses the step count of its first parameter with a gradient.

    The default schedule draws :math:`\sigma_k` uniformly from ``[0, 2 sigma)`` at every
    step. On the saddle of a quadratic, every fixed realization of that sequence still
    converges from an (n-1)-dimensional subspace of starting points, as GD and LSGD do,
    but that subspace moves with the realization: the starting points attracted under
    every realization form a subspace of dimension floor((n-1)/2), and from any other
    fixed start the iterates leave the saddle. ``docs/saddles.md``
    gives the measurements and what they do and do not show.

    Args:
        params, lr, momentum, dampening, weight_decay, nesterov (positional, in
        :class:`torch.optim.SGD`'s order), sigma, order, maximize, foreach, differentiable,
        fused, flatten, backend, process_group: as in :class:`LSGD` (``sigma`` is the
            schedule's base value; a step whose :math:`\sigma_k` is 0 is torch's SGD step).
        schedule: ``"random"`` (default), ``"cyclic"``, ``"constant"``, ``"decay"`` or
            ``"growth"``.
        sigma_min, sigma_max: the range of ``"random"`` and ``"cyclic"``
            (default ``[0, 2 * sigma]``).
        period: the length of a ``"cyclic"`` sweep, the time scale of ``"decay"`` and
            ``"growth"`` (default 100).
        seed: the key of the ``"random"`` draws (default 0).
    """

    def __init__(
        self,
        params,
        lr: Union[float, Tensor] = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: Union[float, Tensor] = 0.0,
        nesterov: bool = False,
        *,
        sigma: float = 1.0,
        order: int = 1,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        flatten: str = "tensor",
        backend: str = "auto",
        schedule: str = "random",
        sigma_min: float = 0.0,
        sigma_max: Optional[float] = None,
        period: int = 100,
        seed: int = 0,
        process_group: Optional[Any] = None,
    ):
        self._schedule = dict(schedule=schedule, sigma_min=sigma_min, sigma_max=sigma_max, period=period, seed=seed)
        super().__init__(params, lr, momentum, dampening, weight_decay, nesterov, sigma=sigma, order=order,
                         maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused,
                         flatten=flatten, backend=backend, process_group=process_group)

    def _more_defaults(self) -> Dict[str, Any]:
        return self._schedule

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("schedule", "random")
            group.setdefault("sigma_min", 0.0)
            group.setdefault("sigma_max", None)
            group.setdefault("period", 100)
            group.setdefault("seed", 0)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a checkpoint as :meth:`torch.optim.Optimizer.load_state_dict` does, with
        each parameter's step count restored exactly, as an int64 tensor on the CPU:
        torch's loader casts a ``"step"`` to float32 on the parameter's device in groups
        with ``fused=True`` (its rule for its own fused optimizers), which would round
        counts above 2**24 and move the schedule's counter to the GPU. A count saved as a
        float (a checkpoint cast on the way) is rounded back to the integer it holds."""
        saved_ids = chain.from_iterable(group["params"] for group in state_dict["param_groups"])
        params = chain.from_iterable(group["params"] for group in self.param_groups)
        saved_state = state_dict["state"]
        counts = {}
        for param_id, param in zip(saved_ids, params):
            entry = saved_state.get(param_id)
            if entry is not None and "step" in entry:
                counts[param] = _exact_count(entry["step"])
        super().load_state_dict(state_dict)
        for param, count in counts.items():
            self.state[param]["step"] = count

    def _check_hyperparameters(self, group: Dict[str, Any]) -> None:
        check_lsgd_hyperparameters(group)
        _check_schedule(group)

    def _step(self) -> None:
        found_inf = getattr(self, "found_inf", None)  # GradScaler's (see LSGD._step_supports_amp_scaling)
        if torch.is_tensor(found_inf) and found_inf.item() != 0:
            # The schedule counts steps on the host, so a skipped step must be known
            # there: the one read of found_inf (GradScaler's own path makes it too).
            return
        super()._step()

    def _sigma_at(self, group: Dict[str, Any], step: int) -> float:
        """sigma_k of the group's schedule at ``k = step``. Eagerly from a table of
        _SIGMA_BLOCK consecutive steps, computed by one op call (one call per step would
        cost more than the rest of MLSGD's Python); the values are the op's, bit for bit."""
        schedule = (group["schedule"], float(group["sigma"]), float(group["sigma_min"]),
                    None if group["sigma_max"] is None else float(group["sigma_max"]), int(group["period"]),
                    int(group["seed"]))
        if torch.compiler.is_compiling():
            return torch.ops.mlsgd.scheduled_sigma(*schedule, int(step))
        tables = self.__dict__.setdefault("_sigma_tables", {})
        first = step - step % _SIGMA_BLOCK
        table = tables.get((schedule, first))
        if table is None:
            if len(tables) >= 8:  # parameters at many different counts: keep the newest tables only
                tables.clear()
            steps = torch.arange(first, first + _SIGMA_BLOCK, dtype=torch.int64).unbind()
            table = tables[(schedule, first)] = torch.ops.mlsgd.scheduled_sigmas(steps, *schedule).tolist()
        return table[step - first]

    def _sigmas(self, group: Dict[str, Any], params: List[Tensor]) -> Optional[List[float]]:
        """sigma_k of each parameter's step count k (a group ring: its first parameter's)."""
        counts = self._count_block(group, params)
        steps = counts.tolist() if counts is not None else self._read_counts(params)
        if group["flatten"] == "group":  # one ring, at the step count of its first parameter
            steps = [steps[0]] * len(steps)
        sigma_at = {k: self._sigma_at(group, k) for k in set(steps)}
        return [sigma_at[k] for k in steps]

    def _step_group(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor],
                    momentum_buffers: List[Optional[Tensor]], sigmas: Optional[List[float]] = None) -> None:
        if sigmas is None and torch.compiler.is_compiling() and self._tensor_sigmas_apply(group):
            # Under torch.compile: sigma_k from the count tensors by an op, as a tensor
            # handed to the fused kernel: no Python number for dynamo to specialise on.
            counters = self._counters(params)
            steps = counters[:1] * len(counters) if group["flatten"] == "group" else counters
            sigma = torch.ops.mlsgd.scheduled_sigmas(steps, group["schedule"], float(group["sigma"]),
                                                     float(group["sigma_min"]), group["sigma_max"],
                                                     int(group["period"]), int(group["seed"]))
            self._apply(group, params, grads, momentum_buffers, sigma)
        else:
            # Parameters at the same step count share sigma_k and one kernel call; the
            # counters appear only once the step has succeeded.
            super()._step_group(group, params, grads, momentum_buffers,
                                sigmas=self._sigmas(group, params) if sigmas is None else sigmas)
            if not torch.compiler.is_compiling():
                self._count_step_eagerly(group, params)
                return
            counters = self._counters(params)
        torch._foreach_add_(counters, 1)

    def _count_block(self, group: Dict[str, Any], params: List[Tensor]) -> Optional[Tensor]:
        """The int64 tensor whose elements, in order, are the step counts of `params`
        (each one's ``state["step"]``), if they are; None otherwise (first step, a loaded
        checkpoint, another set of parameters with gradients, a count set by hand)."""
        block = self.__dict__.get("_count_blocks", {}).get(id(group))
        if block is None or len(block[1]) != len(params):
            return None
        state = self.state
        for p, count in zip(params, block[1]):
            param_state = state.get(p)  # .get: no entry created
            if param_state is None or param_state.get("step") is not count:
                return None
        return block[0]

    def _read_counts(self, params: List[Tensor]) -> List[int]:
        """Each parameter's step count as an int, read from its state (0 where it has none;
        nothing is created)."""
        return [int(self.state[p]["step"]) if "step" in self.state.get(p, ()) else 0 for p in params]

    def _count_step_eagerly(self, group: Dict[str, Any], params: List[Tensor]) -> None:
        """Adds one to the step count of each of `params`. The counts of the parameters
        stepped together are kept as the elements (0-dim views) of one int64 tensor, so
        that this is one ``add_``: torch._foreach_add_ on CPU adds tensor by tensor, about
        a microsecond each, which on GPT-2's 148 tensors cost more than the smoothing's
        Python. Each count is still its own int64 tensor in ``state["step"]``."""
        counts = self._count_block(group, params)
        if counts is None:
            counts = torch.tensor(self._read_counts(params), dtype=torch.int64)
            views = counts.unbind()
            for p, count in zip(params, views):
                self.state[p]["step"] = count
            self.__dict__.setdefault("_count_blocks", {})[id(group)] = (counts, views)
        counts.add_(1)

    def _counters(self, params: List[Tensor]) -> List[Tensor]:
        """Each parameter's step count, created at 0 where missing: a tensor, as in
        torch.optim (torch.compile and checkpoint tools expect one); int64, so that the
        schedule's counter stays exact however long the run."""
        counters = []
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64)
            elif not torch.is_tensor(state["step"]):  # checkpoints of torch_mlsgd 0.1 hold an int
                state["step"] = torch.tensor(state["step"], dtype=torch.int64)
            counters.append(state["step"])
        return counters

    def _tensor_sigmas_apply(self, group: Dict[str, Any]) -> bool:
        """Whether a group's step can take sigma_k as a tensor: the fused kernel on plain
        tensors (the unfused and distributed paths need sigma_k as a number)."""
        return self._process_group is None and _takes_fused_kernel(group)


# Steps per table of sigma_k (MLSGD._sigma_at).
_SIGMA_BLOCK = 64


def _exact_count(step: Any) -> Tensor:
    """A saved step count (an int, or a tensor of any dtype and device) as the int64 CPU
    tensor MLSGD keeps."""
    value = step.item() if torch.is_tensor(step) else step
    return torch.tensor(int(round(value)), dtype=torch.int64)
