#include <numeric>

#include "attention_cuda.cuh"
#include "region_attention.h"

namespace dt {
namespace {

constexpr int kProjRows = 8;  // rows of x per projection block

// One region's QKV projection + bias + rotary, written as fp32 into ws (3, B, H, L, hd).
// grid: (ceil(B L / kProjRows), heads of the region, 3 for q / k / v);
// block: kProjRows * hd / 2 threads, thread (i, j) computes channels j and j + hd/2 of row i
// (the rotary pair) of head blockIdx.y's q, k or v.
template <typename T>
__global__ void project_rotary_kernel(const T* __restrict__ x, const T* __restrict__ weight,
                                      const T* __restrict__ bias, float* __restrict__ ws,
                                      int64_t B, int64_t L, int64_t d, int64_t width,
                                      int64_t offset, int64_t first_head, int64_t H, int hd,
                                      float rope_base) {
  extern __shared__ float xs[];  // [kProjRows][width]
  const int64_t M = B * L, m0 = static_cast<int64_t>(blockIdx.x) * kProjRows;
  for (int64_t e = threadIdx.x; e < kProjRows * width; e += blockDim.x) {
    const int64_t i = e / width, c = e % width;
    xs[e] = m0 + i < M ? to_float(x[(m0 + i) * d + offset + c]) : 0.f;
  }
  __syncthreads();

  const int half = hd / 2;
  const int i = threadIdx.x / half, j = threadIdx.x % half;
  const int64_t m = m0 + i;
  if (m >= M) return;
  const int which = blockIdx.z;  // 0 q, 1 k, 2 v
  const int64_t n1 = which * width + static_cast<int64_t>(blockIdx.y) * hd + j, n2 = n1 + half;
  float a1 = to_float(bias[n1]), a2 = to_float(bias[n2]);
  const float* xr = xs + i * width;
  const T* w1 = weight + n1 * width;
  const T* w2 = weight + n2 * width;
  for (int64_t c = 0; c < width; ++c) {
    a1 += xr[c] * to_float(w1[c]);
    a2 += xr[c] * to_float(w2[c]);
  }
  const int64_t b = m / L, l = m % L;
  if (which < 2) {  // rotary, exactly as reference.rotary_tables computes the angle in fp32
    const float inv_freq = powf(rope_base, -static_cast<float>(j) * 2.0f / static_cast<float>(hd));
    const float angle = static_cast<float>(l) * inv_freq;
    float sn, cs;
    sincosf(angle, &sn, &cs);
    const float r1 = a1 * cs - a2 * sn, r2 = a2 * cs + a1 * sn;
    a1 = r1;
    a2 = r2;
  }
  const int64_t g = first_head + blockIdx.y;
  float* dst = ws + ((((which * B + b) * H + g) * L + l) * hd);
  dst[j] = a1;
  dst[j + half] = a2;
}

}  // namespace

void region_attention_forward_cuda(std::uintptr_t x, const std::vector<std::uintptr_t>& weights,
                                   const std::vector<std::uintptr_t>& biases,
                                   const std::vector<int64_t>& widths, std::uintptr_t workspace,
                                   int splits, std::uintptr_t partial, std::uintptr_t out,
                                   int64_t B, int64_t L, int64_t head_dim, float rope_base,
                                   DType dtype, std::uintptr_t stream) {
  DT_CHECK(weights.size() == widths.size() && biases.size() == widths.size(),
           "region_attention_forward_cuda: one weight, bias and width per region");
  DT_CHECK(head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128,
           "region_attention_forward_cuda: head dims 16, 32, 64, 128 are supported");
  const int64_t d = std::accumulate(widths.begin(), widths.end(), int64_t{0});
  if (B * L * d == 0) return;
  const int64_t hd = head_dim, H = d / hd, M = B * L;
  cudaStream_t s = as_stream(stream);
  float* ws = ptr<float>(workspace);

  DT_DISPATCH_FLOATING(dtype, [&] {
    int64_t offset = 0;
    for (size_t r = 0; r < widths.size(); ++r) {
      const int64_t w = widths[r];
      DT_CHECK(w % hd == 0, "region_attention_forward_cuda: width not a multiple of head_dim");
      const size_t smem = kProjRows * w * sizeof(float);
      DT_CHECK(smem <= 48 * 1024, "region_attention_forward_cuda: region wider than 1536");
      const dim3 grid(static_cast<unsigned>((M + kProjRows - 1) / kProjRows),
                      static_cast<unsigned>(w / hd), 3);
      const int threads = kProjRows * static_cast<int>(hd / 2);
      project_rotary_kernel<scalar_t><<<grid, threads, smem, s>>>(
          ptr<const scalar_t>(x), ptr<const scalar_t>(weights[r]), ptr<const scalar_t>(biases[r]),
          ws, B, L, d, w, offset, offset / hd, H, static_cast<int>(hd), rope_base);
      cuda_check(cudaGetLastError(), "region_attention_forward_cuda projection");
      offset += w;
    }

    attn_cuda::Problem p;
    p.B = B;
    p.L = L;
    p.S = L;
    p.H = H;
    p.q = p.k = p.v = {H * L * hd, hd, L * hd};
    p.out = {L * d, d, hd};
    p.causal = false;
    p.lookahead = 0;
    p.scale = 1.f / sqrtf(static_cast<float>(hd));
    const int64_t plane = B * H * L * hd;
    attn_cuda::launch_attention(ws, ws + plane, ws + 2 * plane, ptr<scalar_t>(out), p, hd,
                                splits, ptr<float>(partial), s,
                                "region_attention_forward_cuda attention");
  });
}

}  // namespace dt
