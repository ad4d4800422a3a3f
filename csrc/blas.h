// Single-precision GEMM borrowed from the BLAS that PyTorch already loaded (MKL in its x86 Linux
// wheels, OpenBLAS in others), so the C++ denoiser loop multiplies exactly as fast as F.linear
// without the build linking, or the wheel shipping, a BLAS of its own. Like the OpenMP runtime
// (parallel.h), the Python layer finds the library in the process and hands over its path; where
// none exports `sgemm_` the loop is not offered and Python launches the kernels itself.
#pragma once

#include <cstdint>
#include <string>

namespace dt {

// Borrows `sgemm_` from the library at `library_path` if that library is already loaded in the
// process; false (nothing changed) otherwise. An empty path forgets the borrowed function.
bool use_blas_library(const std::string& library_path);
bool blas_available();

// out (M, N) = x (M, K) . W^T + bias, all row-major: x's rows ldx apart, W (N, K) with rows ldw
// apart (a column slice of a wider weight is fine), out's rows ldo apart. bias may be null.
// accumulate: out += x . W^T instead (bias ignored). The BLAS threads as PyTorch set it.
// Requires blas_available().
void linear_rows(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W, int64_t N,
                 int64_t ldw, const float* bias, float* out, int64_t ldo, bool accumulate);

// linear_rows with the rows split across `num_threads` threads of the kernels' OpenMP team, one
// single-threaded product each (inside a parallel region the BLAS runs sequentially). Falls back
// to one call (threaded by the BLAS itself) for few rows or off the OpenMP runtime.
void linear_rows_parallel(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W,
                          int64_t N, int64_t ldw, const float* bias, float* out, int64_t ldo,
                          bool accumulate, int num_threads);

}  // namespace dt
