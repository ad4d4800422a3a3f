#include "cuda_info.h"

#ifdef DT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace dt {

#ifdef DT_WITH_CUDA
bool cuda_compiled() { return true; }
std::string cuda_architectures() { return DT_CUDA_ARCHS; }
int cuda_device_count() {
  int n = 0;
  // No driver or no device is an ordinary answer here, not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}
int cuda_runtime_version() {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}
#else
bool cuda_compiled() { return false; }
std::string cuda_architectures() { return ""; }
int cuda_device_count() { return 0; }
int cuda_runtime_version() { return 0; }
#endif

}  // namespace dt
