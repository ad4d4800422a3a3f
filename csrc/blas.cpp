#include "blas.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "common.h"
#include "parallel.h"

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#define DT_HAVE_DLOPEN 1
#endif

namespace dt {
namespace {

// The Fortran BLAS entry point. MKL and OpenBLAS implement it in C and take no hidden
// string-length arguments for the one-character transposition flags.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                         const int* k, const float* alpha, const float* a, const int* lda,
                         const float* b, const int* ldb, const float* beta, float* c,
                         const int* ldc);
std::atomic<SgemmFn> g_sgemm{nullptr};

int as_int(int64_t v, const char* what) {
  DT_CHECK(v >= 0 && v <= INT_MAX,
           std::string("linear_rows: ") + what + " exceeds the BLAS int range");
  return static_cast<int>(v);
}

}  // namespace

bool use_blas_library(const std::string& library_path) {
  if (library_path.empty()) {
    g_sgemm.store(nullptr);
    return true;
  }
#ifdef DT_HAVE_DLOPEN
  // RTLD_NOLOAD: only a library PyTorch already loaded, never a second BLAS in the process.
  void* handle = dlopen(library_path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  auto fn = reinterpret_cast<SgemmFn>(dlsym(handle, "sgemm_"));
  if (fn == nullptr) {
    dlclose(handle);
    return false;
  }
  g_sgemm.store(fn);  // the handle stays open: the library must outlive our calls
  return true;
#else
  return false;
#endif
}

bool blas_available() { return g_sgemm.load() != nullptr; }

void linear_rows(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W, int64_t N,
                 int64_t ldw, const float* bias, float* out, int64_t ldo, bool accumulate) {
  SgemmFn sgemm = g_sgemm.load();
  DT_CHECK(sgemm != nullptr, "linear_rows: no BLAS borrowed (use_blas_library)");
  if (M == 0 || N == 0) return;
  float beta = 1.f;
  if (!accumulate) {
    // As torch.addmm does: the bias is copied into every output row, then added to.
    if (bias) {
      for (int64_t m = 0; m < M; ++m) std::memcpy(out + m * ldo, bias, N * sizeof(float));
    } else {
      beta = 0.f;
    }
  }
  if (K == 0) {
    if (!accumulate && !bias)
      for (int64_t m = 0; m < M; ++m) std::fill(out + m * ldo, out + m * ldo + N, 0.f);
    return;
  }
  // Column-major view of the row-major problem: out^T (N x M) = W (N x K) . x^T (K x M), where
  // W read column-major is W^T (transa = 'T') and x read column-major is x^T (transb = 'N').
  const int m = as_int(N, "N"), n = as_int(M, "M"), k = as_int(K, "K");
  const int lda = as_int(ldw, "ldw"), ldb = as_int(ldx, "ldx"), ldc = as_int(ldo, "ldo");
  const float alpha = 1.f;
  sgemm("T", "N", &m, &n, &k, &alpha, W, &lda, x, &ldb, &beta, out, &ldc);
}

void linear_rows_parallel(const float* x, int64_t M, int64_t K, int64_t ldx, const float* W,
                          int64_t N, int64_t ldw, const float* bias, float* out, int64_t ldo,
                          bool accumulate, int num_threads) {
  constexpr int64_t kMinRowsPerThread = 32;
  const int64_t threads = std::min<int64_t>(std::max(num_threads, 1), M / kMinRowsPerThread);
  if (threads <= 1 || !using_openmp_runtime()) {
    linear_rows(x, M, K, ldx, W, N, ldw, bias, out, ldo, accumulate);
    return;
  }
  const int64_t rows = (M + threads - 1) / threads;  // one product per thread
  parallel_for(M, rows, static_cast<int>(threads), [&](int64_t begin, int64_t end) {
    linear_rows(x + begin * ldx, end - begin, K, ldx, W, N, ldw, bias, out + begin * ldo, ldo,
                accumulate);
  });
}

}  // namespace dt
