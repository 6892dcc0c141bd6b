// The Python extension module torch_mlsgd._C. Importing it loads the shared
// object, whose static initialisers register the mlsgd ops (CPU kernels) with
// the dispatcher through torch's stable ABI; the CUDA kernels are a library
// of their own (_C_cuda), loaded only into a torch with CUDA. No pybind11 and
// only CPython's limited API, so that one build serves every Python from 3.9
// on (abi3) as well as every torch from the floor on.

#include <Python.h>

namespace {

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "Compiled CPU kernels of torch_mlsgd (registered as torch.ops.mlsgd.*).",
    -1,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_def); }
