// The one place where the compiled core meets Python. Each op contributes one register_* block;
// tensors arrive as raw addresses (tensor.data_ptr()) and shapes, already validated by
// disenttalk_fast/_bridge.py.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cuda_info.h"
#include "film.h"

namespace py = pybind11;
using addr = std::uintptr_t;

namespace {

void register_info(py::module_& m) {
  m.def("cuda_compiled", &dt::cuda_compiled);
  m.def("cuda_architectures", &dt::cuda_architectures);
  m.def("cuda_device_count", &dt::cuda_device_count);
  m.def("cuda_runtime_version", &dt::cuda_runtime_version);
}

void register_film(py::module_& m) {
  m.def(
      "film_forward_cpu",
      [](addr x, addr g, addr b, addr res, addr out, int64_t B, int64_t L, int64_t C, int threads) {
        py::gil_scoped_release nogil;
        dt::film_forward_cpu(dt::ptr<const float>(x), dt::ptr<const float>(g),
                             dt::ptr<const float>(b), dt::ptr<const float>(res),
                             dt::ptr<float>(out), B, L, C, threads);
      });
#ifdef DT_WITH_CUDA
  m.def("film_forward_cuda", [](addr x, addr g, addr b, addr res, addr out, int64_t B, int64_t L,
                                int64_t C, int dtype, addr stream) {
    dt::film_forward_cuda(x, g, b, res, out, B, L, C, static_cast<dt::DType>(dtype), stream);
  });
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "disenttalk_fast compiled kernels (C++ CPU, CUDA)";
  register_info(m);
  register_film(m);
}
