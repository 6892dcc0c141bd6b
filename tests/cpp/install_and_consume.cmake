# Installs torch_mlsgd from BUILD_DIR into a scratch prefix, then builds the
# C++ examples as a separate project with find_package(torch_mlsgd), runs the
# quickstart and trains SGD, LSGD and MLSGD for a few hundred steps on a
# Fashion-MNIST subset. Fails on the first step that fails.
set(prefix ${BUILD_DIR}/consumer/prefix)
set(consumer ${BUILD_DIR}/consumer/build)
file(REMOVE_RECURSE ${BUILD_DIR}/consumer)

include(${SOURCE_DIR}/cmake/run_checked.cmake)

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
# Caffe2_DIR as well as Torch_DIR: TorchConfig looks for its Caffe2 package on the
# system paths first, where another torch's (Debian's) may be installed.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples/cpp -B ${consumer}
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}" -DTorch_DIR=${TORCH_DIR}
    -DCaffe2_DIR=${TORCH_DIR}/../Caffe2)
run(${CMAKE_COMMAND} --build ${consumer} --parallel 2)
run(${consumer}/lsgd_quickstart)
run(${consumer}/train_fashion_mnist --subset 6400 --epochs 2 --batch-size 32 --max-steps 150
    --seeds 0 --threads 2 --check)
