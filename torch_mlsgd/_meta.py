"""What the C++ op library leaves to Python: the ops' autograd formulas and their
fake (meta) kernels, registered with ``torch.library`` once the ops are loaded.

Stable-ABI libraries hold only kernels and schemas: autograd and fake kernels
are torch-version-specific machinery, so they live on this side.
"""

import torch

__all__ = ["register"]


def _smooth_backward(ctx, grad):
    # S = A^{-1} with A symmetric, so the vector-Jacobian product is S(grad).
    return torch.ops.mlsgd.laplacian_smooth.default(grad, ctx.sigma, ctx.order, ctx.backend), None, None, None


def _smooth_setup_context(ctx, inputs, output):
    _, ctx.sigma, ctx.order, ctx.backend = inputs


def register() -> None:
    """Registers the autograd formula of ``laplacian_smooth`` and every op's fake kernel."""
    torch.library.register_autograd("mlsgd::laplacian_smooth", _smooth_backward,
                                    setup_context=_smooth_setup_context)

    @torch.library.register_fake("mlsgd::laplacian_smooth")
    def _laplacian_smooth(input, sigma, order=1, backend="auto"):
        return torch.empty_like(input, memory_format=torch.contiguous_format)

    @torch.library.register_fake("mlsgd::laplacian_smooth_")
    def _laplacian_smooth_(input, sigma, order=1, backend="auto"):
        return None

    @torch.library.register_fake("mlsgd::laplacian_smooth_list_")
    def _laplacian_smooth_list_(tensors, sigma, order=1, flatten="tensor", backend="auto"):
        return None

    @torch.library.register_fake("mlsgd::laplacian_smooth_shard")
    def _laplacian_smooth_shard(shard, left_halo, right_halo, sigma, order=1):
        return torch.empty_like(shard, memory_format=torch.contiguous_format)

    @torch.library.register_fake("mlsgd::check_direct_route")
    def _check_direct_route(like, sigma, order):
        return None

    @torch.library.register_fake("mlsgd::lsgd_step_.tensor")
    def _lsgd_step_tensor(params, grads, momentum_buffers, fresh_buffers, lr, sigma, order, momentum, dampening,
                          weight_decay, nesterov, maximize, flatten, backend, grad_scale=None, found_inf=None):
        return None

    @torch.library.register_fake("mlsgd::scheduled_sigmas")
    def _scheduled_sigmas(steps, schedule, sigma, sigma_min, sigma_max, period, seed):
        return torch.empty(len(steps), dtype=torch.float64, device="cpu")

    @torch.library.register_fake("mlsgd::lsgd_step_")
    def _lsgd_step_(params, grads, momentum_buffers, fresh_buffers, lr, sigma, order, momentum, dampening,
                    weight_decay, nesterov, maximize, flatten, backend, grad_scale=None, found_inf=None):
        return None

    @torch.library.register_fake("mlsgd::lsadamw_step_")
    def _lsadamw_step_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, lr, beta1, beta2,
                       weight_decay, eps, amsgrad, maximize, sigma, order, flatten, backend, grad_scale=None,
                       found_inf=None):
        return None
