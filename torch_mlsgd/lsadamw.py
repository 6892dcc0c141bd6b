"""LSAdamW: AdamW on Laplacian-smoothed gradients."""

from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.optim.optimizer import _get_scalar_dtype

from ._validation import check_lsadamw_hyperparameters
from .lsgd import (
    _PLAIN_TENSORS,
    _SMOOTHABLE_DTYPES,
    GivenParams,
    _as_tensor,
    _check_process_group,
    _scalar,
    _smoothed,
    check_direct_route,
    check_group_once,
    check_group_ring,
    refuse_gradient,
    scaler_tensors,
)

__all__ = ["LSAdamW"]


class LSAdamW(GivenParams):
    r"""AdamW on Laplacian-smoothed gradients (LS-AdamW).

    Each step replaces every gradient by its Laplacian smoothing, then takes the step of
    :class:`torch.optim.AdamW` with it: Adam's moments see the smoothed gradient and the
    weight decay is decoupled.

    .. math::
        \begin{aligned}
        & s = (I + \sigma (-L)^p)^{-1} g \quad \text{(on the flattened gradient; } -s
            \textbf{ if maximize)} \\
        & \theta \leftarrow \theta (1 - \gamma \lambda) \\
        & m \leftarrow \beta_1 m + (1 - \beta_1) s, \quad v \leftarrow \beta_2 v + (1 - \beta_2) s^2
            \quad (\hat v = \max(\hat v, v) \textbf{ if amsgrad}) \\
        & \theta \leftarrow \theta - \frac{\gamma}{1 - \beta_1^t} \,
            \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}
        \end{aligned}

    where :math:`L` is the periodic 1-D discrete Laplacian. With ``sigma=0`` this is
    :class:`torch.optim.AdamW` (it runs torch's own AdamW step, bit for bit); with
    ``sigma > 0`` it equals :func:`torch_mlsgd.smooth_grad_` followed by AdamW, without
    changing ``.grad``.

    The arguments are :class:`torch.optim.AdamW`'s, in its positional order and with its
    defaults; the smoothing keywords come after ``*``.

    Args:
        params: iterable of parameters or of dicts defining parameter groups.
        lr: learning rate :math:`\gamma`, a float or a one-element Tensor (default: 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default: (0.9, 0.999)).
        eps: :math:`\epsilon`, added to the denominator (default: 1e-8).
        weight_decay: decoupled weight decay :math:`\lambda`, a float or a one-element
            Tensor (default: 1e-2).
        amsgrad: use the maximum of past second moments (default: False).
        sigma: smoothing strength :math:`\sigma \ge 0` (default: 1.0); 0 is AdamW.
        order: power :math:`p \ge 1` of the Laplacian (default: 1).
        maximize: maximize the objective instead of minimizing (default: False).
        foreach: with ``fused=False``, torch's ``_foreach`` AdamW after the smoothing op,
            instead of its loop over tensors (default: None).
        capturable: keep step counts on the parameters' device so that the step can be
            captured in a CUDA graph, as torch's AdamW does; runs the (smoothing plus)
            ``foreach`` implementation unless ``fused=True`` (default: False).
        differentiable: run the step under autograd, as :class:`torch.optim.AdamW` does
            (torch's per-tensor AdamW after the differentiable smoothing op). Not with
            ``fused=True`` (default: False).
        fused: one kernel per group, ``mlsgd::lsadamw_step_`` (default: None, i.e. True
            unless ``foreach`` or ``capturable`` is given). On CPU it smooths and updates
            in one pass: each gradient is read once and each parameter and moment read and
            written once, the memory traffic of torch's fused AdamW. On CUDA it smooths,
            then runs torch's fused AdamW kernel on the smoothed gradients.
        flatten: ``"tensor"`` smooths each parameter's gradient as its own ring;
            ``"group"`` the concatenation of a group's gradients, in parameter order, as
            one ring (default: ``"tensor"``).
        backend: smoothing route, ``"auto"``, ``"fft"`` or ``"direct"``
            (see :func:`torch_mlsgd.laplacian_smooth`).
        process_group: with ``flatten="group"``, the group's gradients on this rank are
            this rank's shard of one ring spread over the ranks of ``process_group``,
            smoothed exactly as a whole (as :class:`torch_mlsgd.LSGD` does). DTensor
            parameters (FSDP2) need nothing: their global rings are smoothed exactly.

    The state is torch's AdamW state (``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    amsgrad, ``max_exp_avg_sq``), so checkpoints move between the two and ``state_dict()``
    resumes bit for bit. Parameters whose ``.grad`` is ``None`` are skipped; sparse and
    complex gradients are rejected. Under ``torch.amp.GradScaler`` the scaler unscales
    the gradients before the step, as for torch's unfused AdamW.

    Example:
        >>> optimizer = torch_mlsgd.LSAdamW(model.parameters(), lr=1e-3, sigma=0.5)
        >>> for input, target in loader:
        ...     optimizer.zero_grad()
        ...     loss_fn(model(input), target).backward()
        ...     optimizer.step()
    """

    def __init__(
        self,
        params,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: Union[float, Tensor] = 1e-2,
        amsgrad: bool = False,
        *,
        sigma: float = 1.0,
        order: int = 1,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        flatten: str = "tensor",
        backend: str = "auto",
        process_group: Optional[Any] = None,
    ):
        if fused and foreach:
            raise ValueError("`fused` and `foreach` cannot be `True` together.")
        if fused and differentiable:
            raise ValueError("`fused` does not support `differentiable`")
        _check_process_group(process_group, flatten)
        self._process_group = process_group
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, sigma=sigma, order=order, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        flatten=flatten, backend=backend,
                        # torch.optim.AdamW's own key: a state_dict of LSAdamW loads into AdamW.
                        decoupled_weight_decay=True)
        check_lsadamw_hyperparameters(defaults)
        super().__init__(params, defaults)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("_process_group", None)
        self._checked: Dict[int, tuple] = {}
        for group in self.param_groups:
            for key, value in (("amsgrad", False), ("sigma", 1.0), ("order", 1), ("maximize", False),
                               ("foreach", None), ("capturable", False), ("differentiable", False), ("fused", None),
                               ("flatten", "tensor"), ("backend", "auto"), ("decoupled_weight_decay", True)):
                group.setdefault(key, value)

    def _check_group(self, group: Dict[str, Any]) -> None:
        check_group_once(self, group, check_lsadamw_hyperparameters)

    def _uses_fused(self, group: Dict[str, Any]) -> bool:
        """Whether the group steps through mlsgd::lsadamw_step_ (when it smooths)."""
        if group["differentiable"]:
            return False
        if group["fused"] is None:
            # (Under torch.compile, dynamo owns "capturable" - it may set it for CUDA graphs - and the
            # op is opaque to it: the fused kernel.)
            return group["foreach"] is None and (torch.compiler.is_compiling() or group["capturable"] is False)
        return bool(group["fused"])

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """Whether GradScaler hands ``step()`` its ``grad_scale`` and ``found_inf`` (torch's
        contract for fused optimizers): as for torch's AdamW, when ``fused=True`` was asked
        for (every group), and the fused kernel runs, which divides S(g) by the scale and
        skips a step with inf/NaN itself (on CUDA through torch's fused AdamW, on the
        device)."""
        return self._process_group is None and all(
            group["fused"] is True and self._uses_fused(group)
            and all(type(p) in _PLAIN_TENSORS for p in group["params"]) for group in self.param_groups)

    def _init_group(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
                    exp_avg_sqs: List[Tensor], max_exp_avg_sqs: List[Tensor], state_steps: List[Tensor]) -> None:
        _check_process_group(self._process_group, group["flatten"])
        # Counts live where torch's AdamW keeps them: on the parameters' device for the
        # fused and capturable steps (which read them there), else on the CPU.
        counts_on_device = self._uses_fused(group) or group["capturable"] is True
        for p in group["params"]:
            if type(p) not in _PLAIN_TENSORS:
                from .distributed import check_not_sharded

                check_not_sharded(p, group["flatten"], self._process_group)
            grad = p.grad
            if grad is None:
                continue
            if grad.dtype not in _SMOOTHABLE_DTYPES or grad.layout != torch.strided:
                refuse_gradient("LSAdamW", grad)
            params.append(p)
            grads.append(grad)
            state = self.state[p]
            if len(state) == 0:
                state["step"] = torch.zeros((), dtype=_get_scalar_dtype(),
                                            device=p.device if counts_on_device else torch.device("cpu"))
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif counts_on_device and state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)  # a checkpoint loaded for another implementation
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(state["step"])
        if group["flatten"] == "group":
            check_group_ring(grads)

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Performs a single optimization step.

        Args:
            closure: a closure that reevaluates the model and returns the loss.

        Every group and gradient is checked before any parameter changes.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            work = []
            for group in self.param_groups:
                self._check_group(group)
                lists: Tuple[List[Tensor], ...] = ([], [], [], [], [], [])
                self._init_group(group, *lists)
                check_direct_route(self, group, lists[0], lists[1])
                work.append((group, lists))
            for group, lists in work:
                if lists[0]:
                    self._step_group(group, *lists)
        return loss

    def _step_group(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor],
                    exp_avg_sqs: List[Tensor], max_exp_avg_sqs: List[Tensor], state_steps: List[Tensor]) -> None:
        beta1, beta2 = group["betas"]
        sigma, order, flatten, backend = group["sigma"], group["order"], group["flatten"], group["backend"]
        distributed = self._process_group is not None or not all(type(p) in _PLAIN_TENSORS for p in params)
        amp = scaler_tensors(self, params[0].device)
        grad_scale, found_inf = amp.get("grad_scale"), amp.get("found_inf")
        if distributed and sigma != 0:
            grads = _presmoothed(params, grads, sigma, order, flatten, backend, self._process_group)
        elif sigma != 0 and self._uses_fused(group):
            torch._foreach_add_(state_steps, 1)
            torch.ops.mlsgd.lsadamw_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                                          _as_tensor(group["lr"]), float(beta1), float(beta2),
                                          float(_scalar(group["weight_decay"])), float(group["eps"]),
                                          bool(group["amsgrad"]), bool(group["maximize"]), float(sigma), int(order),
                                          flatten, backend, grad_scale, found_inf)
            if found_inf is not None:
                # A skipped step takes its count back, on the device, as torch's fused AdamW does.
                torch._foreach_sub_(state_steps, [found_inf] * len(state_steps))
            if not torch.compiler.is_compiling():
                # The kernel writes through data pointers: tell autograd (compiled graphs
                # track their mutations themselves).
                torch.autograd.graph.increment_version([*params, *exp_avgs, *exp_avg_sqs, *max_exp_avg_sqs])
            return
        elif sigma != 0:
            grads = _smoothed(grads, sigma, order, flatten, backend, maximize=False)
        # sigma = 0, or gradients smoothed above: torch's own AdamW step (its fused one
        # under GradScaler, which takes grad_scale and found_inf as the kernel does).
        _torch_adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, group,
                     fused=True if amp else False if distributed else group["fused"], grad_scale=grad_scale,
                     found_inf=found_inf)


def _presmoothed(params: List[Tensor], grads: List[Tensor], sigma: float, order: int, flatten: str, backend: str,
                 process_group: Optional[Any]) -> List[Tensor]:
    """S(g) of gradients whose rings may be spread over ranks (process_group=, DTensors),
    as tensors laid out like the gradients; one exchange per process group."""
    from .distributed import like_param, local_shard, presmooth_sharded

    sharded = presmooth_sharded(params, grads, [sigma] * len(params), order, flatten, process_group,
                                check_finite=False)
    whole = [i for i in range(len(params)) if i not in sharded]  # every rank holds these whole
    local = dict(sharded)
    if whole:
        local.update(zip(whole, _smoothed([local_shard(grads[i]) for i in whole], sigma, order, flatten, backend,
                                          maximize=False)))
    return [like_param(local[i], p) for i, p in enumerate(params)]


def _torch_adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, group: Dict[str, Any],
                 fused: Optional[bool], grad_scale: Optional[Tensor] = None,
                 found_inf: Optional[Tensor] = None) -> None:
    """torch.optim.AdamW's step on these gradients, with the group's arguments: the same
    functional call AdamW makes, so that sigma = 0 agrees with it bit for bit."""
    from torch.optim.adamw import adamw

    beta1, beta2 = group["betas"]
    lr = group["lr"]
    foreach = group["foreach"]
    if isinstance(lr, Tensor) and not group["capturable"] and not fused and foreach is not False:
        # torch's foreach AdamW takes a Tensor lr only when capturable; its value is the same.
        lr = _scalar(lr) if foreach or (foreach is None and _torch_defaults_to_foreach(params)) else lr
    adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, foreach=foreach,
          capturable=group["capturable"], differentiable=group["differentiable"], fused=fused,
          has_complex=False, amsgrad=group["amsgrad"], beta1=beta1, beta2=beta2, lr=lr,
          weight_decay=_scalar(group["weight_decay"]), eps=group["eps"], maximize=group["maximize"],
          grad_scale=grad_scale, found_inf=found_inf)


def _torch_defaults_to_foreach(params: List[Tensor]) -> bool:
    from torch.optim.optimizer import _default_to_fused_or_foreach

    return _default_to_fused_or_foreach(params, False, use_fused=False)[1]
