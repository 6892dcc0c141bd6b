"""LSGD: stochastic gradient descent on Laplacian-smoothed gradients."""

import operator
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._validation import check_lsgd_hyperparameters
from .functional import laplacian_smooth

__all__ = ["LSGD", "lsgd"]


class GivenParams(Optimizer):
    """An Optimizer that remembers the tensors it was given (add_param_group, which the
    constructor calls too), so that a step can refuse a group whose tensors were replaced
    behind its back (see check_group_once)."""

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        super().add_param_group(param_group)
        self.__dict__.setdefault("_given", set()).update(map(id, self.param_groups[-1]["params"]))

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        # Unpickled or copied: remember the tensors it now holds. (load_state_dict calls
        # this too, and must not bless tensors swapped in behind the optimizer's back.)
        if "_given" not in self.__dict__:
            self._given = {id(p) for group in self.param_groups for p in group["params"]}


class LSGD(GivenParams):
    r"""Laplacian-smoothing stochastic gradient descent (Osher et al., 2018).

    Each step replaces every gradient by its Laplacian smoothing, then takes an SGD
    step (with optional momentum, as :class:`torch.optim.SGD` does it):

    .. math::
        \begin{aligned}
        & g \leftarrow -g \quad \textbf{if maximize} \\
        & s = (I + \sigma (-L)^p)^{-1} g \quad \text{(on the flattened gradient)} \\
        & d = s + \lambda \theta \\
        & \textbf{if } \mu \neq 0: \; b = d \text{ (first step)}, \;
            b \leftarrow \mu b + (1 - \tau) d \text{ (later)}; \;
            d = d + \mu b \text{ if nesterov else } b \\
        & \theta \leftarrow \theta - \gamma d
        \end{aligned}

    where :math:`L` is the periodic 1-D discrete Laplacian. Weight decay is added
    *after* smoothing, as in the reference LS-SGD code. With ``sigma=0`` this is
    exactly :class:`torch.optim.SGD`.

    The arguments are :class:`torch.optim.SGD`'s, in its positional order and with its
    defaults, so that ``LSGD(params, *sgd_args, sigma=0)`` is ``SGD(params, *sgd_args)``
    (it runs torch's own SGD step, bit for bit); the smoothing keywords come after ``*``.

    Args:
        params: iterable of parameters or of dicts defining parameter groups.
        lr: learning rate :math:`\gamma`, a float or a one-element Tensor (default: 1e-3).
        momentum: momentum factor :math:`\mu` (default: 0).
        dampening: dampening :math:`\tau` for momentum (default: 0).
        weight_decay: L2 penalty :math:`\lambda`, a float or a one-element Tensor (default: 0).
        nesterov: enables Nesterov momentum (default: False).
        sigma: smoothing strength :math:`\sigma \ge 0` (default: 1.0); 0 is SGD.
        order: power :math:`p \ge 1` of the Laplacian (default: 1).
        maximize: maximize the objective instead of minimizing (default: False).
        foreach: with ``fused=False``, use ``torch._foreach_*`` ops for the update
            instead of a loop over tensors (default: None, i.e. True).
        differentiable: run the step under autograd, as :class:`torch.optim.SGD` does
            (the per-tensor ops; the smoothing op is differentiable), so that gradients
            flow through it to the parameters, gradients and buffers that require them.
            Not with ``fused=True`` (default: False).
        fused: run the whole step in one C++ kernel per group, ``mlsgd::lsgd_step_``
            (default: None, i.e. True unless ``foreach`` is given). The fused kernel reads
            each gradient once and writes each parameter and buffer once; the other
            implementations are kept as references and agree with it to rounding.
        flatten: ``"tensor"`` smooths each parameter's gradient as its own ring;
            ``"group"`` smooths the concatenation of a group's gradients, in
            parameter order, as one ring (default: ``"tensor"``).
        backend: smoothing route, ``"auto"``, ``"fft"`` or ``"direct"``
            (see :func:`torch_mlsgd.laplacian_smooth`).
        process_group: with ``flatten="group"``, the group's gradients on this rank are
            this rank's shard of one ring spread over the ranks of ``process_group``
            (in rank order), smoothed exactly as a whole
            (:func:`torch_mlsgd.distributed.sharded_laplacian_smooth`). Not needed under
            DistributedDataParallel, whose ranks hold whole, identical gradients.

    Parameters whose ``.grad`` is ``None`` are skipped. Sparse and complex
    gradients are rejected. Only the momentum buffers are kept in
    ``optimizer.state``, so ``state_dict()`` checkpoints resume bit for bit.

    Example:
        >>> optimizer = torch_mlsgd.LSGD(model.parameters(), lr=0.1, sigma=1.0, momentum=0.9)
        >>> optimizer.zero_grad()
        >>> loss_fn(model(input), target).backward()
        >>> optimizer.step()
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
        process_group: Optional[Any] = None,
    ):
        _check_implementation(foreach, fused, differentiable)
        _check_process_group(process_group, flatten)
        self._process_group = process_group
        defaults = dict(lr=lr, sigma=sigma, order=order, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize, flatten=flatten,
                        backend=backend, foreach=foreach, differentiable=differentiable, fused=fused,
                        **self._more_defaults())
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _more_defaults(self) -> Dict[str, Any]:
        """A subclass's own hyper-parameters, added to LSGD's defaults (see MLSGD)."""
        return {}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        super().__setstate__(state)
        # A process group is not part of the pickled state (nor of state_dict).
        self.__dict__.setdefault("_process_group", None)
        self._checked: Dict[int, tuple] = {}  # see _check_group
        for group in self.param_groups:
            group.setdefault("sigma", 1.0)
            group.setdefault("order", 1)
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("flatten", "tensor")
            group.setdefault("backend", "auto")
            group.setdefault("foreach", None)
            group.setdefault("fused", None)
            group.setdefault("differentiable", False)

    def _init_group(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor],
                    momentum_buffers: List[Optional[Tensor]]) -> None:
        _check_process_group(self._process_group, group["flatten"])
        state = self.state
        for p in group["params"]:
            if type(p) not in _PLAIN_TENSORS:  # subclasses may be shards (DTensor, FlatParameter)
                from .distributed import check_not_sharded

                check_not_sharded(p, group["flatten"], self._process_group)
            grad = p.grad
            if grad is None:
                continue
            if grad.dtype not in _SMOOTHABLE_DTYPES or grad.layout != torch.strided:
                self._refuse_gradient(grad)
            params.append(p)
            grads.append(grad)
            # .get on the defaultdict itself would create empty entries.
            param_state = state.get(p)
            momentum_buffers.append(param_state.get("momentum_buffer") if param_state else None)
        if group["flatten"] == "group":
            check_group_ring(grads)

    @property
    def _step_supports_amp_scaling(self) -> bool:
        """Whether GradScaler hands ``step()`` its ``grad_scale`` and ``found_inf`` (torch's
        contract for fused optimizers) instead of unscaling the gradients and reading
        found_inf on the host first: as for torch's SGD, when ``fused=True`` was asked for
        (every group), and the fused kernel runs (sigma = 0 too), which divides S(g) by the
        scale and skips a step with inf/NaN itself, on the device. (Not by default: code that clips
        unscaled gradients, such as Lightning's, refuses optimizers that unscale.)"""
        return self._process_group is None and all(group["fused"] is True and _takes_fused_kernel(group)
                                                   for group in self.param_groups)

    def _sigmas(self, group: Dict[str, Any], params: List[Tensor]) -> Optional[List[float]]:
        """Each parameter's smoothing strength in this step; None: the group's sigma for all."""
        return None

    def _step_group(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor],
                    momentum_buffers: List[Optional[Tensor]], sigmas: Optional[List[float]] = None) -> None:
        """One step of the parameters of `group` that have gradients, each with its
        smoothing strength in `sigmas` (the group's sigma for all when None)."""
        distributed = self._process_group is not None or not all(type(p) in _PLAIN_TENSORS for p in params)
        if not distributed and (sigmas is None or all(s == sigmas[0] for s in sigmas)):
            # The usual case (MLSGD's too: parameters stepped together share one count):
            # one call of the kernel.
            self._apply(group, params, grads, momentum_buffers, group["sigma"] if sigmas is None else sigmas[0])
            return
        if sigmas is None:
            sigmas = [group["sigma"]] * len(params)
        sharded: Dict[int, Tensor] = {}
        if distributed:
            # Rings spread over ranks are smoothed first, in one exchange; those
            # gradients then step with sigma = 0 (DTensors through their local shards).
            from .distributed import presmooth_sharded

            sharded = presmooth_sharded(params, grads, sigmas, group["order"], group["flatten"], self._process_group)
        calls: Dict[float, List[int]] = {}
        for i, sigma in enumerate(sigmas):
            calls.setdefault(0.0 if i in sharded else sigma, []).append(i)
        for sigma, members in calls.items():
            buffers = [momentum_buffers[i] for i in members]
            self._apply(group, [params[i] for i in members],
                        [sharded[i] if i in sharded else grads[i] for i in members], buffers, sigma)
            for i, buf in zip(members, buffers):
                momentum_buffers[i] = buf

    def _apply(self, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor],
               momentum_buffers: List[Optional[Tensor]], sigma: float) -> None:
        """The step implementation on (the local shards of) `params`; new momentum
        buffers go into `momentum_buffers` and the state."""
        plain = all(type(p) in _PLAIN_TENSORS for p in params)
        if not plain:
            from .distributed import like_param, local_shard
        buffers = momentum_buffers if plain else [local_shard(b) for b in momentum_buffers]
        fresh = [i for i, buf in enumerate(buffers) if buf is None]
        amp = scaler_tensors(self, params[0].device)
        if amp:
            # The fused kernel, sigma = 0 too: torch's fused SGD would leave the new
            # momentum buffers of a skipped first step uninitialised (torch.empty_like).
            implementation = partial(_fused_lsgd, **amp)
        elif not isinstance(sigma, Tensor) and sigma == 0 and plain and self._process_group is None:
            # No smoothing: torch's own SGD step, with the same arguments (the sharded
            # rings of distributed groups, smoothed already, step with sigma = 0 below).
            implementation = _torch_sgd(group["foreach"], group["fused"])
        elif group.get("differentiable", False):
            implementation = _single_tensor_lsgd  # plain tensor ops, under autograd
        else:
            implementation = _implementation(group["foreach"], group["fused"])
        implementation(params if plain else [local_shard(p) for p in params],
                       grads if plain else [local_shard(g) for g in grads], buffers, lr=group["lr"], sigma=sigma,
                       order=group["order"], momentum=group["momentum"], dampening=group["dampening"],
                       weight_decay=_zero_dim(group["weight_decay"]), nesterov=group["nesterov"],
                       maximize=group["maximize"], flatten=group["flatten"], backend=group["backend"])
        if group["momentum"] != 0:
            for i in fresh:  # the others were updated in place
                momentum_buffers[i] = buffers[i] if plain else like_param(buffers[i], params[i])
                self.state[params[i]]["momentum_buffer"] = momentum_buffers[i]

    def _refuse_gradient(self, grad: Tensor) -> None:
        refuse_gradient(type(self).__name__, grad)

    def _check_group(self, group: Dict[str, Any]) -> None:
        check_group_once(self, group, self._check_hyperparameters)

    def _check_hyperparameters(self, group: Dict[str, Any]) -> None:
        check_lsgd_hyperparameters(group)

    def step(self, closure: Optional[Callable[[], float]] = None) -> Optional[float]:
        """Performs a single optimization step.

        Args:
            closure: a closure that reevaluates the model and returns the loss.

        Every group and gradient is checked before any parameter changes, so a
        bad value raises and leaves parameters and state as they were.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # Under autograd only when differentiable (as torch.optim's optimizers decide it).
        with torch.set_grad_enabled(bool(self.defaults.get("differentiable", False))):
            self._step()
        return loss

    def _step(self) -> None:
        work = []
        for group in self.param_groups:
            self._check_group(group)
            params: List[Tensor] = []
            grads: List[Tensor] = []
            momentum_buffers: List[Optional[Tensor]] = []
            self._init_group(group, params, grads, momentum_buffers)
            # Under torch.compile, sigma_k stays a tensor (see MLSGD._step_group).
            sigmas = self._sigmas(group, params) if params and not torch.compiler.is_compiling() else None
            check_direct_route(self, group, params, grads, sigmas)
            work.append((group, params, grads, momentum_buffers, sigmas))

        for group, params, grads, momentum_buffers, sigmas in work:
            if params:
                self._step_group(group, params, grads, momentum_buffers, sigmas)


# Parameter types that cannot be shards of a larger tensor (see distributed.check_not_sharded).
_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)
# Gradient dtypes LSGD smooths (half precision in float32).
_SMOOTHABLE_DTYPES = frozenset((torch.float16, torch.bfloat16, torch.float32, torch.float64))


def scaler_tensors(optimizer: Optimizer, device: torch.device) -> Dict[str, Tensor]:
    """GradScaler's ``grad_scale`` and ``found_inf``, those it set on the optimizer for the
    length of ``step()`` (see ``_step_supports_amp_scaling``), moved from the scaler's
    device to ``device`` (no synchronisation): keyword arguments of the fused steps."""
    return {key: getattr(optimizer, key).to(device, non_blocking=True)
            for key in ("grad_scale", "found_inf") if torch.is_tensor(getattr(optimizer, key, None))}


def check_group_once(optimizer: Optimizer, group: Dict[str, Any], check: Callable[[Dict[str, Any]], None]) -> None:
    """Refuses a group holding tensors the optimizer was never given (see GivenParams; at
    every step), then runs ``check(group)`` once per distinct set of the group's values (the optimizer's
    ``_checked`` keeps what was checked, by group): a step re-checks a group only when something (a
    scheduler, the user) changed one of its hyper-parameters. Types are compared too:
    order=1.0 equals 1 but is not a valid order. Not under torch.compile: checked at
    construction, as torch.optim's optimizers check, with no graph break."""
    if torch.compiler.is_compiling():
        return
    if not optimizer.__dict__.get("_given", set()).issuperset(map(id, group["params"])):
        _refuse_replaced_params(optimizer, group)
    checked = optimizer.__dict__.setdefault("_checked", {})
    entry = checked.get(id(group))
    if entry is not None:
        values_of, values, types, versions = entry
        try:
            current = values_of(group)
        except KeyError:  # a hyper-parameter was removed: check (and fail) below
            current = None
        # Tensors first, by identity and version (the tuples' == then compares them by
        # identity too, never elementwise).
        if (current is not None and tuple(map(type, current)) == types
                and all(current[i] is values[i] and current[i]._version == version for i, version in versions)
                and current == values):
            return
    check(group)
    keys = [k for k in group if k != "params"]
    values_of = operator.itemgetter(*keys, *keys[:1])  # twice the first: a tuple even for one key
    values = values_of(group)
    versions = tuple((i, v._version) for i, v in enumerate(values) if isinstance(v, Tensor))
    checked[id(group)] = (values_of, values, tuple(map(type, values)), versions)


def _refuse_replaced_params(optimizer: Optimizer, group: Dict[str, Any]) -> None:
    index = next(i for i, g in enumerate(optimizer.param_groups) if g is group)
    shapes = [tuple(p.shape) for p in group["params"] if id(p) not in optimizer._given]
    raise RuntimeError(
        f"{type(optimizer).__name__}: param_groups[{index}]['params'] holds tensors this optimizer was never given "
        f"(shapes {shapes[:3]}{' ...' if len(shapes) > 3 else ''}). Engines that replace a group's parameters by one "
        "flat partition per rank (DeepSpeed ZeRO, stages 1-3, and its bf16 optimizer) would have each rank smooth "
        "its own slice of the concatenated group, which is not the method, so it is refused rather than changed "
        "silently. Shard with DDP, FSDP2 or ZeroRedundancyOptimizer instead (exact: docs/distributed.md); add "
        "parameters with add_param_group.")


def check_direct_route(optimizer: Optimizer, group: Dict[str, Any], params: List[Tensor], grads: List[Tensor],
                       sigmas: Optional[List[float]] = None) -> None:
    """backend="direct" refuses what its kernels cannot take (orders above 64, or 8 on
    CUDA; warm-ups beyond the route's limits). The kernel would refuse only when its
    group's turn came, after earlier groups were updated: ask it first, for every
    distinct dtype, device and sigma of the step (`sigmas`: each parameter's; None: the
    group's sigma for all)."""
    if group["backend"] != "direct" or not params or torch.compiler.is_compiling():
        return
    if optimizer._process_group is not None or not all(type(p) in _PLAIN_TENSORS for p in params):
        return  # sharded rings are smoothed before the kernel, by their own route
    checked = set()
    for i, grad in enumerate(grads):
        sigma = float(group["sigma"] if sigmas is None else sigmas[i])
        key = (grad.dtype, grad.device, sigma)
        if key not in checked:
            checked.add(key)
            torch.ops.mlsgd.check_direct_route(grad, sigma, int(group["order"]))


def check_group_ring(grads: List[Tensor]) -> None:
    """flatten="group" smooths a group's gradients as one vector: they must share one
    dtype and device (RuntimeError otherwise)."""
    for g in grads[1:]:
        if g.dtype != grads[0].dtype or g.device != grads[0].device:
            raise RuntimeError(
                "flatten='group' smooths a group's gradients as one vector, so they must share "
                f"one dtype and device; got {grads[0].dtype} on {grads[0].device} and {g.dtype} on {g.device}"
            )


def refuse_gradient(optimizer: str, grad: Tensor) -> None:
    """Raises the error of a gradient the optimizers cannot smooth (sparse, complex, integer)."""
    if grad.is_sparse or grad.layout != torch.strided:
        raise RuntimeError(f"{optimizer} does not support sparse gradients")
    if grad.is_complex():
        raise RuntimeError(f"{optimizer} does not support complex gradients (got dtype {grad.dtype}); smooth real "
                           "and imaginary parts as separate real parameters")
    raise RuntimeError(f"{optimizer} needs floating-point gradients, got dtype {grad.dtype}")


def _check_process_group(process_group: Optional[Any], flatten: str) -> None:
    if process_group is not None and flatten != "group":
        raise ValueError("process_group needs flatten='group': the group's gradients form this rank's shard")


def _zero_dim(value: Any) -> Any:
    """A one-element Tensor hyper-parameter as a 0-dim one (torch's SGD takes no other
    shape); anything else as it is."""
    return value.reshape(()) if isinstance(value, Tensor) and value.dim() else value


def _scalar(value: Any) -> float:
    """A Tensor hyper-parameter's value as a Python number (the unfused implementations)."""
    return value.item() if isinstance(value, Tensor) else value


def _as_tensor(value: Any) -> Tensor:
    """A hyper-parameter as the tensor the fused op's .tensor overload takes."""
    return value if isinstance(value, Tensor) else torch.tensor(float(value), dtype=torch.float64)


def _smoothed(grads: List[Tensor], sigma: float, order: int, flatten: str, backend: str,
              maximize: bool) -> List[Tensor]:
    """Fresh tensors holding S(g) (or -S(g) when maximizing), one per gradient."""
    if flatten == "group":
        flat = laplacian_smooth(torch.cat([g.reshape(-1) for g in grads]), sigma, order, backend=backend)
        sizes = [g.numel() for g in grads]
        smoothed = [piece.view_as(g) for piece, g in zip(flat.split(sizes), grads)]
    else:
        smoothed = [laplacian_smooth(g, sigma, order, backend=backend) for g in grads]
    if maximize:
        # S is linear and sign-symmetric: S(-g) == -S(g) bit for bit. Out of place under
        # autograd (a group ring's pieces are views).
        if torch.is_grad_enabled():
            smoothed = [s.neg() for s in smoothed]
        else:
            for s in smoothed:
                s.neg_()
    return smoothed


def lsgd(
    params: List[Tensor],
    grads: List[Tensor],
    momentum_buffer_list: List[Optional[Tensor]],
    *,
    lr: float,
    sigma: float,
    order: int,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    maximize: bool,
    flatten: str,
    backend: str,
    foreach: Optional[bool] = None,
    fused: Optional[bool] = None,
) -> None:
    r"""Functional LSGD step; see :class:`LSGD` for the update rule.

    Updates ``params`` in place. Entries of ``momentum_buffer_list`` that are
    ``None`` are replaced by new buffers when ``momentum != 0``. ``fused``
    (the default when ``foreach`` is not given) runs one C++ kernel; otherwise the
    smoothing op runs first, followed by ``torch._foreach_*`` ops (``foreach=True``
    or None) or by a loop of per-tensor ops (``foreach=False``).
    """
    if not params:
        _implementation(foreach, fused)  # still refuses fused=foreach=True
        return
    implementation = _implementation(foreach, fused)
    implementation(params, grads, momentum_buffer_list, lr=lr, sigma=sigma, order=order, momentum=momentum,
                   dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                   flatten=flatten, backend=backend)


def _check_implementation(foreach: Optional[bool], fused: Optional[bool], differentiable: bool) -> None:
    """torch.optim.SGD's rules for its implementation keywords, with its words (raised as
    ValueError, as every bad argument of this package's Python API)."""
    if not isinstance(differentiable, bool):
        raise TypeError(f"differentiable must be a bool, got {type(differentiable).__name__}")
    if fused and differentiable:
        raise ValueError("`fused` does not support `differentiable`")
    _implementation(foreach, fused)  # refuses fused=foreach=True


def _torch_sgd(foreach: Optional[bool], fused: Optional[bool]) -> Callable[..., None]:
    """torch.optim.SGD's step, as an implementation of LSGD with sigma = 0: the same
    functional call SGD(params, ...) makes with these keywords, so the two agree bit for bit."""
    from torch.optim.sgd import sgd

    def step(params, grads, momentum_buffer_list, *, lr, sigma, order, momentum, dampening, weight_decay,
             nesterov, maximize, flatten, backend) -> None:
        sgd(params, grads, momentum_buffer_list, foreach=foreach, fused=fused, weight_decay=weight_decay,
            momentum=momentum, lr=lr, dampening=dampening, nesterov=nesterov, maximize=maximize)

    return step


def _implementation(foreach: Optional[bool], fused: Optional[bool]) -> Callable[..., None]:
    """The step implementation for torch.optim's `foreach`/`fused` keywords."""
    if fused and foreach:
        raise ValueError("`fused` and `foreach` cannot be `True` together.")
    if fused or (fused is None and foreach is None):
        return _fused_lsgd
    return _multi_tensor_lsgd if foreach is None or foreach else _single_tensor_lsgd


def _fused_lsgd(params, grads, momentum_buffer_list, *, lr, sigma, order, momentum, dampening, weight_decay,
                nesterov, maximize, flatten, backend, grad_scale: Optional[Tensor] = None,
                found_inf: Optional[Tensor] = None) -> None:
    if momentum != 0:
        fresh = [buf is None for buf in momentum_buffer_list]
        if any(fresh):
            if found_inf is not None and dampening != 0 and found_inf.item() != 0:
                # A new buffer that a skipped step leaves at zero would later read as
                # momentum * 0 + (1 - dampening) * d, not d: with dampening, the one case
                # that reads found_inf on the host, skip here and create no buffer.
                return
            # Zeros under GradScaler: with dampening 0, a buffer left at zero by a step the
            # kernel skips gives momentum * 0 + d = d next step, as a new buffer does.
            new_buffer = torch.empty_like if found_inf is None else torch.zeros_like
            for i, p in enumerate(params):
                if fresh[i]:
                    momentum_buffer_list[i] = new_buffer(p, memory_format=torch.contiguous_format)
        buffers = momentum_buffer_list
    else:
        fresh, buffers = [], []
    if isinstance(lr, Tensor) or isinstance(sigma, Tensor):
        # Tensor lr (torch's compiled-optimizer recipe) or a tensor of sigma_k: no Python
        # float for torch.compile to specialise on, so a changing lr recompiles nothing.
        torch.ops.mlsgd.lsgd_step_.tensor(params, grads, buffers, fresh, _as_tensor(lr), _as_tensor(sigma),
                                          int(order), float(momentum), float(dampening), float(_scalar(weight_decay)),
                                          bool(nesterov), bool(maximize), flatten, backend, grad_scale, found_inf)
    else:
        torch.ops.mlsgd.lsgd_step_.default(params, grads, buffers, fresh, float(lr), float(sigma), int(order),
                                           float(momentum), float(dampening), float(_scalar(weight_decay)),
                                           bool(nesterov), bool(maximize), flatten, backend, grad_scale, found_inf)
    if not torch.compiler.is_compiling():
        # The kernel writes through data pointers: tell autograd the tensors changed, so
        # that a graph which saved a parameter before the step refuses the stale value (as
        # after torch's SGD). Compiled graphs track their mutations themselves.
        torch.autograd.graph.increment_version([*params, *buffers])


def _takes_fused_kernel(group: Dict[str, Any]) -> bool:
    """Whether a group's step is one call of mlsgd::lsgd_step_ on its own tensors (not
    under autograd, not through another implementation, no shards)."""
    return (not group.get("differentiable", False) and _implementation(group["foreach"], group["fused"]) is _fused_lsgd
            and all(type(p) in _PLAIN_TENSORS for p in group["params"]))


def _single_tensor_lsgd(params, grads, momentum_buffer_list, *, lr, sigma, order, momentum, dampening,
                        weight_decay, nesterov, maximize, flatten, backend) -> None:
    # Out of place, as torch's single-tensor SGD: under autograd (differentiable=True)
    # the smoothed pieces of a group ring are views that must not be modified.
    lr_tensor = isinstance(lr, Tensor) and lr.requires_grad  # differentiable in lr, as torch's SGD
    lr = lr if lr_tensor else _scalar(lr)
    decay_tensor = isinstance(weight_decay, Tensor) and weight_decay.requires_grad  # and in weight_decay
    weight_decay = weight_decay if decay_tensor else _scalar(weight_decay)
    directions = _smoothed(grads, _scalar(sigma), order, flatten, backend, maximize)
    for i, (param, d) in enumerate(zip(params, directions)):
        if decay_tensor:
            d = d.addcmul(param.clone(), weight_decay)  # param changes in place below
        elif weight_decay != 0:
            d = d.add(param, alpha=weight_decay)
        if momentum != 0:
            buf = momentum_buffer_list[i]
            if buf is None:
                buf = torch.clone(d).detach()
                momentum_buffer_list[i] = buf
            else:
                buf.mul_(momentum).add_(d, alpha=1 - dampening)
            d = d.add(buf, alpha=momentum) if nesterov else buf
        if lr_tensor:
            param.addcmul_(d, lr, value=-1)
        else:
            param.add_(d, alpha=-lr)


def _multi_tensor_lsgd(params, grads, momentum_buffer_list, *, lr, sigma, order, momentum, dampening,
                       weight_decay, nesterov, maximize, flatten, backend) -> None:
    lr, weight_decay = _scalar(lr), _scalar(weight_decay)
    directions = _smoothed(grads, _scalar(sigma), order, flatten, backend, maximize)
    if weight_decay != 0:
        torch._foreach_add_(directions, params, alpha=weight_decay)
    if momentum != 0:
        old = [i for i, buf in enumerate(momentum_buffer_list) if buf is not None]
        if old:
            old_buffers = [momentum_buffer_list[i] for i in old]
            torch._foreach_mul_(old_buffers, momentum)
            torch._foreach_add_(old_buffers, [directions[i] for i in old], alpha=1 - dampening)
        for i, buf in enumerate(momentum_buffer_list):
            if buf is None:
                momentum_buffer_list[i] = torch.clone(directions[i]).detach()
        buffers = [buf for buf in momentum_buffer_list if buf is not None]
        if nesterov:
            torch._foreach_add_(directions, buffers, alpha=momentum)
        else:
            directions = buffers
    torch._foreach_add_(params, directions, alpha=-lr)
