// Helpers shared by the CUDA kernels: dtype dispatch, float conversion, error checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common.h"

namespace dt {

inline void cuda_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(err));
}

inline cudaStream_t as_stream(std::uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Multiprocessors of the current device (launch plans size their grids by it). A plain query,
// allowed during CUDA-graph capture.
inline int current_device_sms(const char* what) {
  int device = 0, sms = 0;
  cuda_check(cudaGetDevice(&device), what);
  cuda_check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), what);
  return sms;
}

// Host-callable too, so that a kernel's per-thread body can be run on the CPU (see
// local_dwconv_run in dwconv_cuda.cu).
template <typename T>
__host__ __device__ __forceinline__ float to_float(T v);
template <>
__host__ __device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__host__ __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__host__ __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__host__ __device__ __forceinline__ T from_float(float v);
template <>
__host__ __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__host__ __device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__host__ __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace dt

// Calls the templated body with `scalar_t` bound to the CUDA type of `dtype`.
#define DT_DISPATCH_FLOATING(dtype, ...)                                   \
  [&] {                                                                    \
    switch (dtype) {                                                       \
      case ::dt::DType::kFloat32: {                                        \
        using scalar_t = float;                                            \
        return __VA_ARGS__();                                              \
      }                                                                    \
      case ::dt::DType::kFloat16: {                                        \
        using scalar_t = __half;                                           \
        return __VA_ARGS__();                                              \
      }                                                                    \
      case ::dt::DType::kBFloat16: {                                       \
        using scalar_t = __nv_bfloat16;                                    \
        return __VA_ARGS__();                                              \
      }                                                                    \
    }                                                                      \
    throw std::invalid_argument("disenttalk_fast._C: unsupported dtype"); \
  }()
