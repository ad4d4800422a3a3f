// The per-thread body of the CUDA local_dwconv run kernel (local_dwconv_run in
// csrc/dwconv_cuda.cu), run on the CPU for every item of the kernel's grid and compared with a
// plain loop: the kernel's indexing, halo, partial last run and vector / scalar channel paths are
// checked on machines without a GPU. Built and run by test_cuda_host.py (needs nvcc only).
// Prints "ok" or one "FAIL ..." line, exit status 1 on failure.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "dwconv_cuda.cu"

using namespace dt;

template <typename T, int K, int V>
double worst_error(int64_t B, int64_t L, int64_t C, bool with_bias, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  // out starts as a sentinel: an element the kernel never writes shows as a huge error.
  std::vector<T> x(B * L * C), w(C * K), b(C), out(B * L * C, from_float<T>(12345.f));
  for (auto& v : x) v = from_float<T>(normal(gen));
  for (auto& v : w) v = from_float<T>(normal(gen));
  for (auto& v : b) v = from_float<T>(normal(gen));
  const int64_t items = local_run_items(B, L, C, V);
  for (int64_t item = 0; item < items; ++item)
    local_dwconv_run<T, K, V>(x.data(), w.data(), with_bias ? b.data() : nullptr, out.data(), L,
                              C, item);
  double worst = 0;
  for (int64_t bb = 0; bb < B; ++bb)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < C; ++c) {
        float acc = with_bias ? to_float(b[c]) : 0.f;
        for (int j = 0; j < K; ++j) {
          const int64_t tt = t + j - K / 2;
          if (tt >= 0 && tt < L) acc += to_float(w[c * K + j]) * to_float(x[(bb * L + tt) * C + c]);
        }
        const double got = to_float(out[(bb * L + t) * C + c]);
        const double want = to_float(from_float<T>(acc));
        worst = std::max(worst, std::fabs(got - want) / (1.0 + std::fabs(want)));
      }
  return worst;
}

template <typename T, int K>
void check_all(const char* name, double tol) {
  // Shorter than the window, shorter than / equal to / just past one run, odd, the model's.
  const int64_t lengths[] = {1, 2, 3, 7, 8, 9, 16, 17, 151, 250};
  for (int64_t L : lengths)
    for (int64_t B : {1, 3})
      for (bool bias : {true, false}) {
        for (int64_t C : {4, 8, 96, 256}) {  // vector path
          const double e = worst_error<T, K, kLocalVec>(B, L, C, bias, unsigned(L * 7 + C));
          if (e > tol) {
            std::printf("FAIL %s K=%d V=%d B=%ld L=%ld C=%ld bias=%d error %g\n", name, K,
                        kLocalVec, long(B), long(L), long(C), int(bias), e);
            std::exit(1);
          }
        }
        for (int64_t C : {1, 5, 257}) {  // scalar path
          const double e = worst_error<T, K, 1>(B, L, C, bias, unsigned(L * 5 + C));
          if (e > tol) {
            std::printf("FAIL %s K=%d V=1 B=%ld L=%ld C=%ld bias=%d error %g\n", name, K,
                        long(B), long(L), long(C), int(bias), e);
            std::exit(1);
          }
        }
      }
}

int main() {
  check_all<float, 3>("fp32", 1e-5);
  check_all<float, 5>("fp32", 1e-5);
  check_all<float, 7>("fp32", 1e-5);
  check_all<__half, 5>("fp16", 2e-3);
  check_all<__nv_bfloat16, 5>("bf16", 1.6e-2);
  // The vector path only where C and both addresses allow whole vector loads.
  if (local_vector_width<float>(1024, 2048, 256) != kLocalVec ||
      local_vector_width<float>(1024, 2048, 250) != 1 ||
      local_vector_width<float>(1028, 2048, 256) != 1 ||
      local_vector_width<__half>(1032, 2048, 256) != kLocalVec ||
      local_vector_width<__half>(1028, 2048, 256) != 1) {
    std::printf("FAIL local_vector_width\n");
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
