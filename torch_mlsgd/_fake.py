"""Fake (meta) kernels of the ops, for torch.compile and FakeTensor tracing (torch >= 2.1).

torch.compile traces ops on fake tensors that carry shapes and dtypes but no data; a custom
op needs a function that produces its outputs' metadata. torch 1.13 has no such mechanism
(and no torch.compile), so there this module registers nothing.
"""

import torch

__all__ = ["register_fake_kernels"]


def register_fake_kernels() -> bool:
    """Registers the fake kernels once; returns whether this torch supports them."""
    register = getattr(torch.library, "register_fake", None) or getattr(torch.library, "impl_abstract", None)
    if register is None:
        return False

    @register("mlsgd::laplacian_smooth")
    def _laplacian_smooth(input, sigma, order=1, backend="auto"):
        return torch.empty_like(input, memory_format=torch.contiguous_format)

    @register("mlsgd::laplacian_smooth_")
    def _laplacian_smooth_(input, sigma, order=1, backend="auto"):
        return None

    @register("mlsgd::laplacian_smooth_shard")
    def _laplacian_smooth_shard(shard, left_halo, right_halo, sigma, order=1):
        return torch.empty_like(shard, memory_format=torch.contiguous_format)

    @register("mlsgd::lsgd_step_")
    def _lsgd_step_(params, grads, momentum_buffers, fresh_buffers, lr, sigma, order, momentum, dampening,
                    weight_decay, nesterov, maximize, flatten, backend):
        return None

    return True
