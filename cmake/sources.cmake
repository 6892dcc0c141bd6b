# The library's sources, relative to the repository root; shared by the main
# build and the fuzzing build (tests/fuzz). setup.py builds the same op sources
# into the Python wheel.
get_filename_component(_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

# The ops on torch's stable ABI (compiled with TORCH_TARGET_VERSION): the same
# implementation the wheel ships; they register themselves with the dispatcher.
set(TORCH_MLSGD_OP_SOURCES
  ${_root}/csrc/core/checks.cpp
  ${_root}/csrc/core/recursive_filter.cpp
  ${_root}/csrc/core/sigma_schedule.cpp
  ${_root}/csrc/ops/laplacian_smooth.cpp
  ${_root}/csrc/ops/lsadamw_step.cpp
  ${_root}/csrc/ops/lsadamw_step_common.cpp
  ${_root}/csrc/ops/lsgd_step.cpp
  ${_root}/csrc/ops/lsgd_step_common.cpp
  ${_root}/csrc/ops/schedule.cpp
  ${_root}/csrc/ops/shard_by_ring.cpp
  ${_root}/csrc/ops/smooth_args.cpp
  ${_root}/csrc/ops/smooth_list.cpp
  ${_root}/csrc/ops/symbol_cache.cpp
  ${_root}/csrc/ops/cpu/choose_backend.cpp
  ${_root}/csrc/ops/cpu/direct_smooth.cpp
  ${_root}/csrc/ops/cpu/fft_smooth.cpp
  ${_root}/csrc/ops/cpu/laplacian_smooth_cpu.cpp
  ${_root}/csrc/ops/cpu/lsadamw_step_cpu.cpp
  ${_root}/csrc/ops/cpu/lsgd_step_cpu.cpp
  ${_root}/csrc/ops/cpu/simd_sweeps.cpp
)

# The LibTorch C++ API over the dispatcher, and the optimizers.
set(TORCH_MLSGD_API_SOURCES
  ${_root}/csrc/api/laplacian_smooth.cpp
  ${_root}/csrc/api/lsgd_step.cpp
  ${_root}/csrc/api/sharded_laplacian_smooth.cpp
  ${_root}/csrc/optim/group_step.cpp
  ${_root}/csrc/optim/lsadamw.cpp
  ${_root}/csrc/optim/lsgd.cpp
  ${_root}/csrc/optim/mlsgd.cpp
  ${_root}/csrc/optim/smoothing_optimizer.cpp
)

# The CUDA kernel layer: plain CUDA C++, no torch (plus the torch-free math it shares).
set(TORCH_MLSGD_CUDA_KERNEL_SOURCES
  ${_root}/csrc/core/recursive_filter.cpp
  ${_root}/csrc/cuda/kernels/direct.cu
  ${_root}/csrc/cuda/kernels/fft.cu
)

# The stable-ABI glue of the CUDA ops (needs a CUDA-enabled torch).
set(TORCH_MLSGD_CUDA_GLUE_SOURCES
  ${_root}/csrc/ops/cuda/laplacian_smooth_cuda.cpp
  ${_root}/csrc/ops/cuda/lsadamw_step_cuda.cpp
  ${_root}/csrc/ops/cuda/lsgd_step_cuda.cpp
)

# The stable ABI's floor, as setup.py's TORCH_FLOOR.
set(TORCH_MLSGD_TORCH_TARGET_VERSION 0x020b000000000000)
