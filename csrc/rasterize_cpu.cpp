#include "rasterize.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"

namespace dt {
namespace {

struct Tri {
  float x0, y0, z0, x1, y1, z1, x2, y2, z2;
};

// Barycentrics of the pixel centre (px, py); the exact expressions are shared with the CUDA
// kernel and the PyTorch reference so that all three agree except on ties at edges.
inline void barycentrics(const Tri& t, float inv_area, float px, float py, float& w0, float& w1,
                         float& w2) {
  w0 = ((t.x2 - t.x1) * (py - t.y1) - (t.y2 - t.y1) * (px - t.x1)) * inv_area;
  w1 = ((t.x0 - t.x2) * (py - t.y2) - (t.y0 - t.y2) * (px - t.x2)) * inv_area;
  w2 = ((t.x1 - t.x0) * (py - t.y0) - (t.y1 - t.y0) * (px - t.x0)) * inv_area;
}

inline Tri load(const float* v, const int32_t* tri) {
  const float* a = v + 3 * static_cast<int64_t>(tri[0]);
  const float* b = v + 3 * static_cast<int64_t>(tri[1]);
  const float* c = v + 3 * static_cast<int64_t>(tri[2]);
  return {a[0], a[1], a[2], b[0], b[1], b[2], c[0], c[1], c[2]};
}

// Rasterises rows [r_begin, r_end) of one frame: a depth pass over every triangle whose bounding
// box meets the band, then one attribute interpolation per covered pixel (deferred, so hidden
// fragments cost only their depth test).
void raster_band(const float* v, const int32_t* tris, const float* attrs, float* out,
                 int32_t* ids, int64_t T, int64_t C, int64_t W, int64_t r_begin, int64_t r_end,
                 float near_z, float* zbuf) {
  const int64_t n_px = (r_end - r_begin) * W;
  std::fill(zbuf, zbuf + n_px, std::numeric_limits<float>::infinity());
  int32_t* band_ids = ids + r_begin * W;
  std::fill(band_ids, band_ids + n_px, -1);
  const float band_lo = static_cast<float>(r_begin), band_hi = static_cast<float>(r_end);
  const float max_col = static_cast<float>(W - 1);

  for (int64_t t = 0; t < T; ++t) {
    const Tri tr = load(v, tris + 3 * t);
    const float ymin = std::min(tr.y0, std::min(tr.y1, tr.y2));
    const float ymax = std::max(tr.y0, std::max(tr.y1, tr.y2));
    // Rows whose centre (r + 0.5) lies in [ymin, ymax].
    if (!(ymax - 0.5f >= band_lo) || !(ymin - 0.5f < band_hi)) continue;
    if (!(tr.z0 > near_z && tr.z1 > near_z && tr.z2 > near_z)) continue;
    const float xmin = std::min(tr.x0, std::min(tr.x1, tr.x2));
    const float xmax = std::max(tr.x0, std::max(tr.x1, tr.x2));
    const float c0f = std::max(0.0f, std::ceil(xmin - 0.5f));
    const float c1f = std::min(max_col, std::floor(xmax - 0.5f));
    if (!(c0f <= c1f)) continue;
    const float area = (tr.x1 - tr.x0) * (tr.y2 - tr.y0) - (tr.y1 - tr.y0) * (tr.x2 - tr.x0);
    if (area == 0.0f || !std::isfinite(area)) continue;
    const float inv_area = 1.0f / area;
    const int64_t r0 = static_cast<int64_t>(std::max(band_lo, std::ceil(ymin - 0.5f)));
    const int64_t r1 = static_cast<int64_t>(std::min(band_hi - 1.0f, std::floor(ymax - 0.5f)));
    const int64_t c0 = static_cast<int64_t>(c0f), c1 = static_cast<int64_t>(c1f);
    const float iz0 = 1.0f / tr.z0, iz1 = 1.0f / tr.z1, iz2 = 1.0f / tr.z2;
    for (int64_t r = r0; r <= r1; ++r) {
      const float py = static_cast<float>(r) + 0.5f;
      float* zrow = zbuf + (r - r_begin) * W;
      int32_t* idrow = band_ids + (r - r_begin) * W;
      for (int64_t c = c0; c <= c1; ++c) {
        const float px = static_cast<float>(c) + 0.5f;
        float w0, w1, w2;
        barycentrics(tr, inv_area, px, py, w0, w1, w2);
        if (w0 < 0.0f || w1 < 0.0f || w2 < 0.0f) continue;
        const float z = 1.0f / (w0 * iz0 + w1 * iz1 + w2 * iz2);
        if (z < zrow[c]) {
          zrow[c] = z;
          idrow[c] = static_cast<int32_t>(t);
        }
      }
    }
  }

  // Deferred attribute pass: perspective-correct weights w_k / z_k, renormalised.
  float* band_out = out + r_begin * W * C;
  for (int64_t p = 0; p < n_px; ++p) {
    float* o = band_out + p * C;
    const int32_t t = band_ids[p];
    if (t < 0) {
      for (int64_t k = 0; k < C; ++k) o[k] = 0.0f;
      continue;
    }
    const int32_t* tri = tris + 3 * static_cast<int64_t>(t);
    const Tri tr = load(v, tri);
    const float area = (tr.x1 - tr.x0) * (tr.y2 - tr.y0) - (tr.y1 - tr.y0) * (tr.x2 - tr.x0);
    const int64_t r = r_begin + p / W, c = p % W;
    float w0, w1, w2;
    barycentrics(tr, 1.0f / area, static_cast<float>(c) + 0.5f, static_cast<float>(r) + 0.5f, w0,
                 w1, w2);
    float p0 = w0 / tr.z0, p1 = w1 / tr.z1, p2 = w2 / tr.z2;
    const float norm = 1.0f / (p0 + p1 + p2);
    p0 *= norm;
    p1 *= norm;
    p2 *= norm;
    const float* a0 = attrs + tri[0] * C;
    const float* a1 = attrs + tri[1] * C;
    const float* a2 = attrs + tri[2] * C;
    for (int64_t k = 0; k < C; ++k) o[k] = p0 * a0[k] + p1 * a1[k] + p2 * a2[k];
  }
}

}  // namespace

void rasterize_cpu(const float* verts, const int32_t* tris, const float* attrs, float* out,
                   int32_t* tri_id, int64_t F, int64_t V, int64_t T, int64_t C, int64_t H,
                   int64_t W, bool attrs_shared, float near_z, int num_threads) {
  if (F * H * W == 0) return;
  // Work items are (frame, band of rows). With at least as many frames as threads, one band per
  // frame; otherwise frames are cut into bands so a single frame still uses every thread. Each
  // band re-reads the triangle list, which costs a cheap bounding-box reject per triangle.
  const int threads = std::max(1, num_threads);
  int64_t bands = 1;
  if (F < threads) bands = std::min<int64_t>(H, (2 * threads + F - 1) / F);
  const int64_t rows_per_band = (H + bands - 1) / bands;
  bands = (H + rows_per_band - 1) / rows_per_band;
  parallel_for(F * bands, 1, threads, [&](int64_t begin, int64_t end) {
    std::vector<float> zbuf(static_cast<size_t>(rows_per_band * W));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t f = item / bands, b = item % bands;
      const int64_t r_begin = b * rows_per_band, r_end = std::min(H, r_begin + rows_per_band);
      raster_band(verts + f * V * 3, tris, attrs_shared ? attrs : attrs + f * V * C,
                  out + f * H * W * C, tri_id + f * H * W, T, C, W, r_begin, r_end, near_z,
                  zbuf.data());
    }
  });
}

void render_vertices_cpu(const float* verts, const int32_t* tris, const float* albedo,
                         bool albedo_shared, const float* rot, const float* trans,
                         const float* gamma, float* screen, float* attrs, int64_t F, int64_t V,
                         int64_t T, float focal, float center, float cam_dist, bool shade,
                         int num_threads) {
  // SH basis constants (Deep3DFaceRecon): a_k * c_k per band.
  const double pi = 3.14159265358979323846;
  const float k0 = static_cast<float>(pi / std::sqrt(4 * pi));
  const float k1 = static_cast<float>(2 * pi / std::sqrt(3.0) * std::sqrt(3.0) / std::sqrt(4 * pi));
  const float k2 = static_cast<float>(2 * pi / std::sqrt(8.0) * 3 * std::sqrt(5.0) /
                                      std::sqrt(12 * pi));
  const float k2z = static_cast<float>(0.5 / std::sqrt(3.0)) * k2;
  const int64_t C = shade ? 3 : 6;
  parallel_for(F, 1, num_threads, [&](int64_t begin, int64_t end) {
    std::vector<float> normals(static_cast<size_t>(V * 3));
    for (int64_t f = begin; f < end; ++f) {
      const float* v = verts + f * V * 3;
      std::fill(normals.begin(), normals.end(), 0.0f);
      for (int64_t t = 0; t < T; ++t) {
        const int64_t i0 = tris[3 * t], i1 = tris[3 * t + 1], i2 = tris[3 * t + 2];
        const float* a = v + 3 * i0;
        const float* b = v + 3 * i1;
        const float* c = v + 3 * i2;
        const float e1x = b[0] - a[0], e1y = b[1] - a[1], e1z = b[2] - a[2];
        const float e2x = c[0] - a[0], e2y = c[1] - a[1], e2z = c[2] - a[2];
        const float nx = e1y * e2z - e1z * e2y, ny = e1z * e2x - e1x * e2z,
                    nz = e1x * e2y - e1y * e2x;
        for (int64_t i : {i0, i1, i2}) {
          normals[3 * i] += nx;
          normals[3 * i + 1] += ny;
          normals[3 * i + 2] += nz;
        }
      }
      const float* R = rot + f * 9;
      const float* tr = trans + f * 3;
      const float* g = gamma + f * 27;
      const float* alb = albedo_shared ? albedo : albedo + f * V * 3;
      float* scr = screen + f * V * 3;
      float* out = attrs + f * V * C;
      for (int64_t i = 0; i < V; ++i) {
        const float* p = v + 3 * i;
        const float X = R[0] * p[0] + R[1] * p[1] + R[2] * p[2] + tr[0];
        const float Y = R[3] * p[0] + R[4] * p[1] + R[5] * p[2] + tr[1];
        const float Z = R[6] * p[0] + R[7] * p[1] + R[8] * p[2] + tr[2];
        float depth = cam_dist - Z;
        const float safe = std::fabs(depth) > 1e-8f ? depth : 1e-8f;
        scr[3 * i] = focal * X / safe + center;
        scr[3 * i + 1] = center - focal * Y / safe;
        scr[3 * i + 2] = depth;
        const float* n = normals.data() + 3 * i;
        const float len = std::max(std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), 1e-12f);
        const float mx = n[0] / len, my = n[1] / len, mz = n[2] / len;
        const float nx = R[0] * mx + R[1] * my + R[2] * mz;
        const float ny = R[3] * mx + R[4] * my + R[5] * mz;
        const float nz = R[6] * mx + R[7] * my + R[8] * mz;
        const float* a = alb + 3 * i;
        float* o = out + C * i;
        if (!shade) {
          o[0] = a[0], o[1] = a[1], o[2] = a[2], o[3] = nx, o[4] = ny, o[5] = nz;
          continue;
        }
        const float Y9[9] = {k0,           -k1 * ny,      k1 * nz,
                             -k1 * nx,     k2 * nx * ny,  -k2 * ny * nz,
                             k2z * (3 * nz * nz - 1), -k2 * nx * nz, 0.5f * k2 * (nx * nx - ny * ny)};
        for (int ch = 0; ch < 3; ++ch) {
          float light = 0.0f;
          for (int k = 0; k < 9; ++k) light += Y9[k] * g[ch * 9 + k];
          o[ch] = light * a[ch];
        }
      }
    }
  });
}

}  // namespace dt
