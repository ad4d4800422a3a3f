#include "blas.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>

#include "common.h"
#include "loaded_library.h"
#include "parallel.h"

namespace dt {
namespace {

// The Fortran BLAS entry point. MKL and OpenBLAS implement it in C and take no hidden
// string-length arguments for the one-character transposition flags.
using SgemmFn = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                         const int* k, const float* alpha, const float* a, const int* lda,
                         const float* b, const int* ldb, const float* beta, float* c,
                         const int* ldc);
std::atomic<SgemmFn> g_sgemm{nullptr};

// A BLAS integer argument. Held in 64 bits, zero-extended: on a little-endian machine an LP64
// BLAS (32-bit ints) reads the low half and an ILP64 one (64-bit ints, e.g. an `sgemm_` built
// with MKL's ILP64 layer) reads all of it, and both see the same value.
struct BlasInt {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  int value;
  explicit BlasInt(int64_t v) : value(static_cast<int>(v)) {}
#else
  int64_t value;
  explicit BlasInt(int64_t v) : value(v) {}
#endif
  const int* get() const { return reinterpret_cast<const int*>(&value); }
};

BlasInt blas_int(int64_t v, const char* what) {
  DT_CHECK(v >= 0 && v <= INT_MAX,
           std::string("linear_rows: ") + what + " exceeds the BLAS int range");
  return BlasInt(v);
}

void call_sgemm(SgemmFn sgemm, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const BlasInt M = blas_int(m, "N"), N = blas_int(n, "M"), K = blas_int(k, "K");
  const BlasInt LDA = blas_int(lda, "ldw"), LDB = blas_int(ldb, "ldx"), LDC = blas_int(ldc, "ldo");
  const float alpha = 1.f;
  sgemm("T", "N", M.get(), N.get(), K.get(), &alpha, a, LDA.get(), b, LDB.get(), &beta, c,
        LDC.get());
}

// A small product whose answer is known, with leading dimensions that differ from the sizes:
// a function that is not the BLAS sgemm we expect gives something else (and is not used).
bool sgemm_works(SgemmFn sgemm) {
  const float w[3 * 4] = {1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0};  // W (3, 3), rows 4 apart
  const float x[2 * 3] = {1, 0, -1, 2, 1, 0};                    // x (2, 3)
  float out[2 * 5] = {};                                         // out (2, 3), rows 5 apart
  call_sgemm(sgemm, 3, 2, 3, w, 4, x, 3, 0.f, out, 5);
  const float expected[2][3] = {{-2, -2, -2}, {4, 13, 22}};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      if (out[i * 5 + j] != expected[i][j]) return false;
  return out[3] == 0.f && out[4] == 0.f;
}

}  // namespace

bool use_blas_library(const std::string& library_path) {
  if (library_path.empty()) {
    g_sgemm.store(nullptr);
    return true;
  }
  // Only from the library named (where PyTorch's own products come from), and only if it
  // multiplies a known product correctly.
  auto fn = reinterpret_cast<SgemmFn>(symbol_from_loaded_library(library_path, "sgemm_"));
  if (fn == nullptr || !sgemm_works(fn)) return false;
  g_sgemm.store(fn);
  return true;
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
  call_sgemm(sgemm, N, M, K, W, ldw, x, ldx, beta, out, ldo);
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
