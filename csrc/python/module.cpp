// The Python extension module torch_mlsgd._C. Importing it loads the shared
// object, whose static initialisers register the mlsgd ops with the
// dispatcher; the module itself only reports what it was built against, so
// that the package can refuse a build that does not match the running torch.
// No pybind11: the ops are reached through torch.ops.mlsgd.

#include <Python.h>
#include <torch/version.h>

#ifdef TORCH_MLSGD_WITH_CUDA
#include <cuda_runtime_api.h>

#include <string>
#endif

namespace {

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "Compiled kernels of torch_mlsgd (registered as torch.ops.mlsgd.*).",
    -1,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) {
    return nullptr;
  }
#ifdef TORCH_MLSGD_WITH_CUDA
  // The CUDA runtime the kernels were compiled against, as torch.version.cuda spells it.
  const std::string cuda_string =
      std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
  const char* cuda = cuda_string.c_str();
#else
  const char* cuda = "";
#endif
  if (PyModule_AddStringConstant(module, "torch_version", TORCH_VERSION) < 0 ||
      PyModule_AddStringConstant(module, "cuda_version", cuda) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
