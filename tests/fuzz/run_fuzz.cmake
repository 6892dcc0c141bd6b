# Builds tests/fuzz with clang and libFuzzer in BUILD_DIR/fuzz and fuzzes the
# op for SECONDS seconds (CTest's fuzz_laplacian_smooth runs this). Crashing
# inputs are written to BUILD_DIR/fuzz/artifacts; the test then fails.
set(fuzz_dir ${BUILD_DIR}/fuzz)
include(${SOURCE_DIR}/cmake/run_checked.cmake)

find_program(CLANGXX NAMES clang++ clang++-14 REQUIRED)
if(NOT EXISTS ${fuzz_dir}/build.ninja)
  # Caffe2_DIR as well as Torch_DIR: see tests/cpp/install_and_consume.cmake.
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/fuzz -B ${fuzz_dir} -G Ninja
      -DCMAKE_CXX_COMPILER=${CLANGXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTorch_DIR=${TORCH_DIR}
      -DCaffe2_DIR=${TORCH_DIR}/../Caffe2)
endif()
run(${CMAKE_COMMAND} --build ${fuzz_dir} --parallel 2)
file(MAKE_DIRECTORY ${fuzz_dir}/corpus ${fuzz_dir}/artifacts)
# libtorch is not built with AddressSanitizer: its allocations at exit are not leaks of ours.
set(ENV{ASAN_OPTIONS} "detect_leaks=0")
set(ENV{UBSAN_OPTIONS} "halt_on_error=1:print_stacktrace=1")
run(${fuzz_dir}/fuzz_laplacian_smooth -max_total_time=${SECONDS} -max_len=4096 -rss_limit_mb=4096
    -artifact_prefix=${fuzz_dir}/artifacts/ ${fuzz_dir}/corpus)
