// Shared definitions of the compiled core. The core sees raw pointers and shapes only: it never
// links libtorch, so the same sources can be embedded in a C++ engine without Python.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace dt {

// Element types understood by the CUDA kernels; the numbering is mirrored in
// disenttalk_fast/_bridge.py. The C++ CPU kernels are fp32 only.
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Pointers cross the Python boundary as integers (tensor.data_ptr()).
template <typename T>
inline T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

}  // namespace dt

// Argument checks in the core are a last line of defence: the Python layer validates tensors
// first and gives the user-facing message.
#define DT_CHECK(cond, msg)                                   \
  do {                                                        \
    if (!(cond)) throw std::invalid_argument(std::string(msg)); \
  } while (0)
