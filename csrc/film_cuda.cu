#include "cuda_common.cuh"
#include "film.h"

namespace dt {
namespace {

// Bandwidth-bound: each thread handles VEC consecutive channels of one row with one vector load
// per tensor (16 bytes when VEC * sizeof(T) == 16). gamma/beta rows are tiny and stay in L1/L2.
template <typename T, int VEC>
__global__ void film_kernel(const T* __restrict__ x, const T* __restrict__ gamma,
                            const T* __restrict__ beta, const T* residual, T* out, int64_t L,
                            int64_t C, int64_t total_vecs) {
  struct alignas(sizeof(T) * VEC) Pack { T v[VEC]; };
  const int64_t cvecs = C / VEC;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total_vecs;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = i / cvecs;
    const int64_t c0 = (i - row * cvecs) * VEC;
    const int64_t b = row / L;
    const Pack xv = reinterpret_cast<const Pack*>(x)[i];
    const Pack gv = *reinterpret_cast<const Pack*>(gamma + b * C + c0);
    const Pack bv = *reinterpret_cast<const Pack*>(beta + b * C + c0);
    Pack rv;
    if (residual) rv = reinterpret_cast<const Pack*>(residual)[i];
    Pack ov;
#pragma unroll
    for (int k = 0; k < VEC; ++k) {
      float acc = to_float(gv.v[k]) * to_float(xv.v[k]) + to_float(bv.v[k]);
      if (residual) acc += to_float(rv.v[k]);
      ov.v[k] = from_float<T>(acc);
    }
    reinterpret_cast<Pack*>(out)[i] = ov;
  }
}

bool aligned(std::uintptr_t p, int bytes) { return p % bytes == 0; }

template <typename T, int VEC>
void launch(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta, std::uintptr_t residual,
            std::uintptr_t out, int64_t B, int64_t L, int64_t C, cudaStream_t stream) {
  const int64_t total_vecs = B * L * C / VEC;
  const int threads = 256;
  // Enough blocks to fill the GPU several times over; the grid-stride loop covers the rest.
  const int64_t blocks = std::min<int64_t>((total_vecs + threads - 1) / threads, 65535 * 8);
  film_kernel<T, VEC><<<(unsigned)blocks, threads, 0, stream>>>(
      ptr<const T>(x), ptr<const T>(gamma), ptr<const T>(beta), ptr<const T>(residual),
      ptr<T>(out), L, C, total_vecs);
  cuda_check(cudaGetLastError(), "film_forward_cuda launch");
}

// film_norm: one warp per (b, l) row. Pass 1 computes the FiLM output, stores it and sums it per
// norm group; pass 2 re-reads the lane's own stored values (L1 hits) for the centred variance;
// pass 3 writes the normalised copy. Statistics come from the rounded `out`, like the reference.
struct NormGroups {
  int end[kMaxNormGroups];  // exclusive channel end of each group
  int n;
};

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ int group_of(const NormGroups& g, int c) {
  int gi = 0;
  while (gi + 1 < g.n && c >= g.end[gi]) ++gi;
  return gi;
}

template <typename T>
__global__ void film_norm_kernel(const T* __restrict__ x, const T* __restrict__ gamma,
                                 const T* __restrict__ beta, const T* residual,
                                 const T* __restrict__ norm_weight,
                                 const T* __restrict__ norm_bias, float eps, NormGroups groups,
                                 T* out, T* __restrict__ normed, int64_t rows, int64_t L, int C) {
  const int lane = threadIdx.x % 32;
  const int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  if (row >= rows) return;  // whole warps exit together: rows are warp-uniform
  const int64_t b = row / L;
  const T* xr = x + row * C;
  T* o = out + row * C;
  float sum[kMaxNormGroups], mean[kMaxNormGroups], rstd[kMaxNormGroups];
#pragma unroll
  for (int gi = 0; gi < kMaxNormGroups; ++gi) sum[gi] = 0.f;
  for (int c = lane; c < C; c += 32) {
    float v = to_float(gamma[b * C + c]) * to_float(xr[c]) + to_float(beta[b * C + c]);
    if (residual) v += to_float(residual[row * C + c]);
    const T stored = from_float<T>(v);
    o[c] = stored;
    const int gi = group_of(groups, c);
#pragma unroll
    for (int k = 0; k < kMaxNormGroups; ++k)
      if (k == gi) sum[k] += to_float(stored);
  }
  int start = 0;
#pragma unroll
  for (int gi = 0; gi < kMaxNormGroups; ++gi) {
    if (gi < groups.n) {
      mean[gi] = warp_sum(sum[gi]) / (float)(groups.end[gi] - start);
      start = groups.end[gi];
    }
    sum[gi] = 0.f;
  }
  for (int c = lane; c < C; c += 32) {
    const int gi = group_of(groups, c);
#pragma unroll
    for (int k = 0; k < kMaxNormGroups; ++k)
      if (k == gi) {
        const float d = to_float(o[c]) - mean[k];
        sum[k] += d * d;
      }
  }
  start = 0;
#pragma unroll
  for (int gi = 0; gi < kMaxNormGroups; ++gi) {
    if (gi < groups.n) {
      rstd[gi] = rsqrtf(warp_sum(sum[gi]) / (float)(groups.end[gi] - start) + eps);
      start = groups.end[gi];
    }
  }
  for (int c = lane; c < C; c += 32) {
    const int gi = group_of(groups, c);
    float m = 0.f, r = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxNormGroups; ++k)
      if (k == gi) {
        m = mean[k];
        r = rstd[k];
      }
    normed[row * C + c] = from_float<T>((to_float(o[c]) - m) * r * to_float(norm_weight[c]) +
                                        to_float(norm_bias[c]));
  }
}

}  // namespace

void film_forward_cuda(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                       std::uintptr_t residual, std::uintptr_t out, int64_t B, int64_t L,
                       int64_t C, DType dtype, std::uintptr_t stream) {
  if (B * L * C == 0) return;
  DT_DISPATCH_FLOATING(dtype, [&] {
    constexpr int kVec = 16 / sizeof(scalar_t);
    const bool vec_ok = C % kVec == 0 && aligned(x, 16) && aligned(gamma, 16) &&
                        aligned(beta, 16) && aligned(out, 16) &&
                        (residual == 0 || aligned(residual, 16));
    if (vec_ok)
      launch<scalar_t, kVec>(x, gamma, beta, residual, out, B, L, C, as_stream(stream));
    else
      launch<scalar_t, 1>(x, gamma, beta, residual, out, B, L, C, as_stream(stream));
  });
}

void film_norm_forward_cuda(std::uintptr_t x, std::uintptr_t gamma, std::uintptr_t beta,
                            std::uintptr_t residual, std::uintptr_t norm_weight,
                            std::uintptr_t norm_bias, float eps, const int64_t* group_widths,
                            int n_groups, std::uintptr_t out, std::uintptr_t normed, int64_t B,
                            int64_t L, int64_t C, DType dtype, std::uintptr_t stream) {
  DT_CHECK(n_groups >= 1 && n_groups <= kMaxNormGroups, "film_norm_forward_cuda: 1 to 8 groups");
  DT_CHECK(C < (1LL << 31), "film_norm_forward_cuda: C too large");
  const int64_t rows = B * L;
  if (rows * C == 0) return;
  NormGroups groups{};
  groups.n = n_groups;
  int64_t end = 0;
  for (int i = 0; i < n_groups; ++i) groups.end[i] = static_cast<int>(end += group_widths[i]);
  DT_CHECK(end == C, "film_norm_forward_cuda: group widths must sum to C");
  const int threads = 256;  // 8 rows per block
  const int64_t blocks = (rows * 32 + threads - 1) / threads;
  DT_CHECK(blocks < (1LL << 31), "film_norm_forward_cuda: too many rows");
  DT_DISPATCH_FLOATING(dtype, [&] {
    film_norm_kernel<scalar_t><<<(unsigned)blocks, threads, 0, as_stream(stream)>>>(
        ptr<const scalar_t>(x), ptr<const scalar_t>(gamma), ptr<const scalar_t>(beta),
        ptr<const scalar_t>(residual), ptr<const scalar_t>(norm_weight),
        ptr<const scalar_t>(norm_bias), eps, groups, ptr<scalar_t>(out), ptr<scalar_t>(normed),
        rows, L, (int)C);
  });
  cuda_check(cudaGetLastError(), "film_norm_forward_cuda launch");
}

}  // namespace dt
