// Z-buffer triangle rasterisation, batched over frames, with deferred perspective-correct
// interpolation of per-vertex attributes (colour, normal, ... any C channels).
//
//   verts  : (F, V, 3) float  screen x, y in pixels (pixel (row i, col j) has its centre at
//            x = j + 0.5, y = i + 0.5) and z = view depth (distance along the camera axis, > near)
//   tris   : (T, 3) int32     vertex indices, shared by all frames; either winding is drawn
//   attrs  : (F, V, C) float  per-vertex attributes, or (V, C) when attrs_shared (same every frame)
//   out    : (F, H, W, C) float  interpolated attributes; 0 where no triangle covers the pixel
//   tri_id : (F, H, W) int32  index of the visible triangle, -1 where none
//
// Rules every backend (and the PyTorch reference in disenttalk_fast/render/rasterize.py) follows:
// a pixel is covered when its centre has all three barycentrics >= 0 (edges inclusive); the
// visible triangle is the one with the smallest perspective-correct depth, ties going to the
// lower triangle index; triangles with a vertex at z <= near or with zero screen area are skipped.
#pragma once

#include <cstdint>

#include "common.h"

namespace dt {

void rasterize_cpu(const float* verts, const int32_t* tris, const float* attrs, float* out,
                   int32_t* tri_id, int64_t F, int64_t V, int64_t T, int64_t C, int64_t H,
                   int64_t W, bool attrs_shared, float near_z, int num_threads);

// The per-vertex half of render() fused for the CPU, one frame per task: area-weighted vertex
// normals, the rigid pose (p' = R p + t), Deep3DFaceRecon's pinhole projection and SH lighting.
//   verts (F, V, 3) model-space positions; tris (T, 3); albedo (V, 3) or (F, V, 3) when
//   !albedo_shared; rot (F, 3, 3); trans (F, 3); gamma (F, 3, 9) SH coefficients per channel
//   (ambient already added).
//   screen (F, V, 3) out: x, y pixels (y down) and view depth cam_dist - Z'.
//   attrs out: shade ? (F, V, 3) lit colour : (F, V, 6) albedo then rotated unit normal.
void render_vertices_cpu(const float* verts, const int32_t* tris, const float* albedo,
                         bool albedo_shared, const float* rot, const float* trans,
                         const float* gamma, float* screen, float* attrs, int64_t F, int64_t V,
                         int64_t T, float focal, float center, float cam_dist, bool shade,
                         int num_threads);

#ifdef DT_WITH_CUDA
// depth_scratch: (F, H, W) uint64 device buffer (packed depth | triangle index), overwritten.
// Launches on `stream` (a cudaStream_t passed as an integer). fp32 only.
void rasterize_cuda(std::uintptr_t verts, std::uintptr_t tris, std::uintptr_t attrs,
                    std::uintptr_t out, std::uintptr_t tri_id, std::uintptr_t depth_scratch,
                    int64_t F, int64_t V, int64_t T, int64_t C, int64_t H, int64_t W,
                    bool attrs_shared, float near_z, std::uintptr_t stream);
#endif

}  // namespace dt
