#include "cuda_common.cuh"
#include "rasterize.h"

namespace dt {
namespace {

// Two passes, both deterministic:
//  1. one thread per (frame, triangle) walks the pixel centres in the triangle's bounding box and
//     atomicMin's a 64-bit key (depth bits << 32 | triangle index) into the depth buffer. Depth
//     is positive, so its float bits order like the float; ties go to the lower triangle index.
//  2. one thread per pixel decodes the winning triangle and interpolates its attributes with
//     perspective-correct barycentrics.
// The barycentric expressions match rasterize_cpu.cpp and the PyTorch reference.

struct Tri {
  float x0, y0, z0, x1, y1, z1, x2, y2, z2;
};

__device__ __forceinline__ Tri load_tri(const float* __restrict__ v, const int32_t* tri) {
  const float* a = v + 3 * static_cast<int64_t>(tri[0]);
  const float* b = v + 3 * static_cast<int64_t>(tri[1]);
  const float* c = v + 3 * static_cast<int64_t>(tri[2]);
  return {a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]};
}

__device__ __forceinline__ void barycentrics(const Tri& t, float inv_area, float px, float py,
                                             float& w0, float& w1, float& w2) {
  w0 = ((t.x2 - t.x1) * (py - t.y1) - (t.y2 - t.y1) * (px - t.x1)) * inv_area;
  w1 = ((t.x0 - t.x2) * (py - t.y2) - (t.y0 - t.y2) * (px - t.x2)) * inv_area;
  w2 = ((t.x1 - t.x0) * (py - t.y0) - (t.y1 - t.y0) * (px - t.x0)) * inv_area;
}

__device__ __forceinline__ float signed_area(const Tri& t) {
  return (t.x1 - t.x0) * (t.y2 - t.y0) - (t.y1 - t.y0) * (t.x2 - t.x0);
}

__global__ void depth_pass(const float* __restrict__ verts, const int32_t* __restrict__ tris,
                           unsigned long long* __restrict__ depth, int64_t F, int64_t V,
                           int64_t T, int64_t H, int64_t W, float near_z) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= F * T) return;
  const int64_t f = i / T, t = i % T;
  const Tri tr = load_tri(verts + f * V * 3, tris + 3 * t);
  if (!(tr.z0 > near_z && tr.z1 > near_z && tr.z2 > near_z)) return;
  const float area = signed_area(tr);
  if (area == 0.0f || !isfinite(area)) return;
  const float inv_area = 1.0f / area;
  const float xmin = fminf(tr.x0, fminf(tr.x1, tr.x2)), xmax = fmaxf(tr.x0, fmaxf(tr.x1, tr.x2));
  const float ymin = fminf(tr.y0, fminf(tr.y1, tr.y2)), ymax = fmaxf(tr.y0, fmaxf(tr.y1, tr.y2));
  const float c0f = fmaxf(0.0f, ceilf(xmin - 0.5f));
  const float c1f = fminf(static_cast<float>(W - 1), floorf(xmax - 0.5f));
  const float r0f = fmaxf(0.0f, ceilf(ymin - 0.5f));
  const float r1f = fminf(static_cast<float>(H - 1), floorf(ymax - 0.5f));
  if (!(c0f <= c1f) || !(r0f <= r1f)) return;
  const int64_t c0 = static_cast<int64_t>(c0f), c1 = static_cast<int64_t>(c1f);
  const int64_t r0 = static_cast<int64_t>(r0f), r1 = static_cast<int64_t>(r1f);
  const float iz0 = 1.0f / tr.z0, iz1 = 1.0f / tr.z1, iz2 = 1.0f / tr.z2;
  unsigned long long* frame_depth = depth + f * H * W;
  for (int64_t r = r0; r <= r1; ++r) {
    const float py = static_cast<float>(r) + 0.5f;
    for (int64_t c = c0; c <= c1; ++c) {
      float w0, w1, w2;
      barycentrics(tr, inv_area, static_cast<float>(c) + 0.5f, py, w0, w1, w2);
      if (w0 < 0.0f || w1 < 0.0f || w2 < 0.0f) continue;
      const float z = 1.0f / (w0 * iz0 + w1 * iz1 + w2 * iz2);
      const unsigned long long key =
          (static_cast<unsigned long long>(__float_as_uint(z)) << 32) |
          static_cast<unsigned long long>(t);
      atomicMin(frame_depth + r * W + c, key);
    }
  }
}

__global__ void resolve_pass(const float* __restrict__ verts, const int32_t* __restrict__ tris,
                             const float* __restrict__ attrs,
                             const unsigned long long* __restrict__ depth, float* __restrict__ out,
                             int32_t* __restrict__ tri_id, int64_t F, int64_t V, int64_t C,
                             int64_t H, int64_t W, bool attrs_shared) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= F * H * W) return;
  const int64_t f = i / (H * W), p = i % (H * W);
  float* o = out + i * C;
  const unsigned long long key = depth[i];
  if (key == ~0ull) {
    tri_id[i] = -1;
    for (int64_t k = 0; k < C; ++k) o[k] = 0.0f;
    return;
  }
  const int32_t t = static_cast<int32_t>(key & 0xffffffffull);
  tri_id[i] = t;
  const int32_t* tri = tris + 3 * static_cast<int64_t>(t);
  const Tri tr = load_tri(verts + f * V * 3, tri);
  float w0, w1, w2;
  barycentrics(tr, 1.0f / signed_area(tr), static_cast<float>(p % W) + 0.5f,
               static_cast<float>(p / W) + 0.5f, w0, w1, w2);
  float p0 = w0 / tr.z0, p1 = w1 / tr.z1, p2 = w2 / tr.z2;
  const float norm = 1.0f / (p0 + p1 + p2);
  p0 *= norm;
  p1 *= norm;
  p2 *= norm;
  const float* a = attrs_shared ? attrs : attrs + f * V * C;
  const float* a0 = a + tri[0] * C;
  const float* a1 = a + tri[1] * C;
  const float* a2 = a + tri[2] * C;
  for (int64_t k = 0; k < C; ++k) o[k] = p0 * a0[k] + p1 * a1[k] + p2 * a2[k];
}

int64_t blocks_for(int64_t n, int threads) { return (n + threads - 1) / threads; }

}  // namespace

void rasterize_cuda(std::uintptr_t verts, std::uintptr_t tris, std::uintptr_t attrs,
                    std::uintptr_t out, std::uintptr_t tri_id, std::uintptr_t depth_scratch,
                    int64_t F, int64_t V, int64_t T, int64_t C, int64_t H, int64_t W,
                    bool attrs_shared, float near_z, std::uintptr_t stream) {
  const int64_t n_px = F * H * W;
  if (n_px == 0) return;
  DT_CHECK(T < (int64_t(1) << 31), "rasterize_cuda: too many triangles");
  cudaStream_t s = as_stream(stream);
  auto* depth = ptr<unsigned long long>(depth_scratch);
  cuda_check(cudaMemsetAsync(depth, 0xff, sizeof(unsigned long long) * n_px, s),
             "rasterize_cuda memset");
  const int threads = 256;
  if (F * T > 0) {
    depth_pass<<<(unsigned)blocks_for(F * T, threads), threads, 0, s>>>(
        ptr<const float>(verts), ptr<const int32_t>(tris), depth, F, V, T, H, W, near_z);
    cuda_check(cudaGetLastError(), "rasterize_cuda depth pass launch");
  }
  resolve_pass<<<(unsigned)blocks_for(n_px, threads), threads, 0, s>>>(
      ptr<const float>(verts), ptr<const int32_t>(tris), ptr<const float>(attrs), depth,
      ptr<float>(out), ptr<int32_t>(tri_id), F, V, C, H, W, attrs_shared);
  cuda_check(cudaGetLastError(), "rasterize_cuda resolve pass launch");
}

}  // namespace dt
