#include <algorithm>
#include <memory>
#include <mutex>
#include <numeric>

#include "attention_cpu.h"
#include "parallel.h"
#include "region_attention.h"

namespace dt {
namespace {

using namespace attn_cpu;

// Projection micro-tile: kRows rows of x times kCols packed weight columns, in 2 * kRows vector
// accumulators (12 of the 16 AVX2 registers).
constexpr int kRows = 6;
constexpr int kCols = 16;
// Rows of x per projection task.
constexpr int64_t kRowTile = 4 * kRows;

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// cos/sin of the rotary angles, (positions x head_dim/2), computed like
// reference.rotary_tables in fp32. A table built for a longer sequence serves shorter ones (the
// angles of position l do not depend on L), so the last table is kept.
struct RopeTable {
  int64_t length;
  int64_t head_dim;
  float base;
  std::vector<float> cos, sin;
};

std::shared_ptr<const RopeTable> rope_table(int64_t L, int64_t head_dim, float base) {
  static std::mutex mu;
  static std::shared_ptr<const RopeTable> last;
  std::lock_guard<std::mutex> lock(mu);
  if (last && last->length >= L && last->head_dim == head_dim && last->base == base) return last;
  auto t = std::make_shared<RopeTable>();
  const int64_t half = head_dim / 2;
  t->length = L;
  t->head_dim = head_dim;
  t->base = base;
  t->cos.resize(L * half);
  t->sin.resize(L * half);
  for (int64_t i = 0; i < half; ++i) {
    const float expo = -static_cast<float>(i) * 2.0f / static_cast<float>(head_dim);
    const float inv_freq = std::pow(base, expo);
    for (int64_t l = 0; l < L; ++l) {
      const float angle = static_cast<float>(l) * inv_freq;
      t->cos[l * half + i] = std::cos(angle);
      t->sin[l * half + i] = std::sin(angle);
    }
  }
  last = t;
  return t;
}

struct Region {
  const float* weight;  // (3 w, w)
  const float* bias;    // (3 w,)
  int64_t width;        // w
  int64_t offset;       // first channel in x / out
  int64_t first_head;   // global index of its first head
  int64_t ncols;        // 3 w rounded up to kCols
  float* packed;        // (w, ncols): weight transposed, zero-padded columns
};

// Where phase 1 writes and phase 2 reads: q (pre-scaled to base-2 logits) and v as
// (B, H, L, hd); k transposed block by block (see key_block_index) over Lk = L rounded up to
// whole key blocks, so that full key blocks are always readable.
struct Projected {
  float* q;
  float* kT;
  float* v;
  int64_t H, L, Lk, hd;
};

void pack_weight(const Region& r) {
  const int64_t n3 = 3 * r.width;
  for (int64_t k = 0; k < r.width; ++k) {
    float* dst = r.packed + k * r.ncols;
    for (int64_t n = 0; n < n3; ++n) dst[n] = r.weight[n * r.width + k];
    std::fill(dst + n3, dst + r.ncols, 0.f);
  }
}

// tmp[i * ldt + j] = sum_k xr[i][k] * W[n0 + j, k] for kRows rows and the kCols output columns
// from n0 (a multiple of kCols) of region r.
inline void project_block(const float* const* xr, const Region& r, int64_t n0, float* tmp,
                          int64_t ldt) {
  v8f acc[kRows][2] = {};
  const float* w = r.packed + n0;
  for (int64_t k = 0; k < r.width; ++k, w += r.ncols) {
    v8f w0 = load(w), w1 = load(w + kLanes);
    DT_PIN(w0);
    DT_PIN(w1);
    for (int i = 0; i < kRows; ++i) {
      const v8f xi = splat(xr[i][k]);
      acc[i][0] += xi * w0;
      acc[i][1] += xi * w1;
    }
  }
  for (int i = 0; i < kRows; ++i) {
    store(tmp + i * ldt, acc[i][0]);
    store(tmp + i * ldt + kLanes, acc[i][1]);
  }
}

// tmp[i * ncols + n] = sum_k x[row_i, offset + k] * W[n, k] for kRows rows (rows past `count`
// repeat the last valid one, their results are ignored).
void project_rows(const float* x, int64_t d, const Region& r, const int64_t* rows, float* tmp) {
  const float* xr[kRows];
  for (int i = 0; i < kRows; ++i) xr[i] = x + rows[i] * d + r.offset;
  for (int64_t n0 = 0; n0 < r.ncols; n0 += kCols) project_block(xr, r, n0, tmp + n0, r.ncols);
}

// Bias + rotary + scatter of one projected row (b, l) of region r into `p`.
// One head at one position: bias + rotary, q pre-scaled into qdst, k into one column of the
// block-transposed keys (kdst: the position's key_block_index), v into vdst. tq / tk / tv: the
// head's projected q, k, v; bq / bk / bv: their biases; cs / sn: the position's rotary table.
inline void finish_head_row(const float* tq, const float* tk, const float* tv, const float* bq,
                            const float* bk, const float* bv, const float* cs, const float* sn,
                            int64_t hd, float q_scale, float* qdst, float* kdst, float* vdst) {
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float q1 = tq[i] + bq[i], q2 = tq[i + half] + bq[i + half];
    qdst[i] = (q1 * cs[i] - q2 * sn[i]) * q_scale;
    qdst[i + half] = (q2 * cs[i] + q1 * sn[i]) * q_scale;
    const float k1 = tk[i] + bk[i], k2 = tk[i + half] + bk[i + half];
    kdst[i * kKeyBlock] = k1 * cs[i] - k2 * sn[i];
    kdst[(i + half) * kKeyBlock] = k2 * cs[i] + k1 * sn[i];
  }
  for (int64_t i = 0; i < hd; ++i) vdst[i] = tv[i] + bv[i];
}

// Key columns past L in one head's last key block are read by whole 16-key loads and masked
// out: keep them finite.
inline void zero_key_padding(float* kT, int64_t L, int64_t Lk, int64_t hd) {
  if (Lk <= L) return;
  for (int64_t j = 0; j < hd; ++j) {
    float* row = kT + key_block_index(Lk - kKeyBlock, hd) + j * kKeyBlock;
    std::fill(row + L % kKeyBlock, row + kKeyBlock, 0.f);
  }
}

void scatter_row(const float* t, const Region& r, const RopeTable& rope, float q_scale, int64_t b,
                 int64_t l, const Projected& p) {
  const int64_t hd = p.hd, half = hd / 2, w = r.width;
  const float* cs = rope.cos.data() + l * half;
  const float* sn = rope.sin.data() + l * half;
  for (int64_t h = 0; h < w / hd; ++h) {
    const int64_t bh = b * p.H + r.first_head + h;
    const int64_t c = h * hd;
    finish_head_row(t + c, t + w + c, t + 2 * w + c, r.bias + c, r.bias + w + c,
                    r.bias + 2 * w + c, cs, sn, hd, q_scale, p.q + (bh * p.L + l) * hd,
                    p.kT + bh * hd * p.Lk + key_block_index(l, hd), p.v + (bh * p.L + l) * hd);
  }
}

template <int HD>
void attend(const Projected& p, float* out, int64_t B, int64_t d, int num_threads) {
  const int64_t L = p.L, tiles = (L + kQueryTile - 1) / kQueryTile;
  parallel_for(B * p.H * tiles, 1, num_threads, [&](int64_t begin, int64_t end) {
    auto st = std::make_unique<TileState<HD>>();
    alignas(32) float qs[kQueryTile * HD];
    int counts[kQueryTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / tiles, l0 = (task % tiles) * kQueryTile;
      const int nq = static_cast<int>(std::min<int64_t>(kQueryTile, L - l0));
      // A local copy of the tile's queries, zero-padded to whole row groups.
      std::copy(p.q + (bh * L + l0) * HD, p.q + (bh * L + l0 + nq) * HD, qs);
      std::fill(qs + nq * HD, qs + kQueryTile * HD, 0.f);
      const float* kT = p.kT + bh * HD * p.Lk;
      const float* v = p.v + bh * L * HD;
      st->reset();
      for (int64_t k0 = 0; k0 < L; k0 += kKeyBlock) {
        std::fill(counts, counts + nq, static_cast<int>(std::min<int64_t>(kKeyBlock, L - k0)));
        attend_block<HD>(qs, nq, kT + k0 * HD, v + k0 * HD, HD, counts, *st);
      }
      const int64_t b = bh / p.H, g = bh % p.H;
      for (int i = 0; i < nq; ++i) st->write_row(i, out + (b * L + l0 + i) * d + g * HD);
    }
  });
}

// One head's queries, keys and values of sample b, projected straight into small per-thread
// buffers: q and v (L, HD), kT block-transposed over Lk keys (see key_block_index), bias and
// rotary applied, q pre-scaled.
template <int HD>
void project_head(const float* x, int64_t d, int64_t b, int64_t L, const Region& r, int64_t hl,
                  const RopeTable& rope, float q_scale, float* q, float* kT, float* v) {
  constexpr int64_t half = HD / 2;
  const int64_t w = r.width, c = hl * HD;
  // Column blocks of the head's q, k and v outputs in the region's packed weight.
  const int64_t starts[3] = {c, w + c, 2 * w + c};
  alignas(32) float tmp[kRows * 3 * HD];
  for (int64_t m = 0; m < L; m += kRows) {
    const float* xr[kRows];
    for (int i = 0; i < kRows; ++i) xr[i] = x + (b * L + std::min(m + i, L - 1)) * d + r.offset;
    for (int part = 0; part < 3; ++part)
      for (int64_t j = 0; j < HD; j += kCols)
        project_block(xr, r, starts[part] + j, tmp + part * HD + j, 3 * HD);
    for (int64_t i = 0; i < std::min<int64_t>(kRows, L - m); ++i) {
      const int64_t l = m + i;
      const float* t = tmp + i * 3 * HD;
      finish_head_row(t, t + HD, t + 2 * HD, r.bias + c, r.bias + w + c, r.bias + 2 * w + c,
                      rope.cos.data() + l * half, rope.sin.data() + l * half, HD, q_scale,
                      q + l * HD, kT + key_block_index(l, HD), v + l * HD);
    }
  }
}

// The fused path: one task per (sample, head) projects that head and attends with it, so its
// queries, keys and values (3 x L x HD floats: 96 KiB at L = 256, HD = 32) stay in the core's L2
// from the projection to the last query tile, instead of going out to L3 and back between two
// phases. Used when there are enough (sample, head) pairs to keep every thread busy.
template <int HD>
void project_and_attend(const float* x, const std::vector<Region>& regions, const RopeTable& rope,
                        float q_scale, float* out, int64_t B, int64_t L, int64_t d, int64_t H,
                        int num_threads) {
  const int64_t Lk = round_up(L, kKeyBlock);
  std::vector<std::pair<const Region*, int64_t>> head_of(H);  // global head -> (region, local)
  for (const auto& r : regions)
    for (int64_t h = 0; h < r.width / HD; ++h) head_of[r.first_head + h] = {&r, h};
  parallel_for(B * H, 1, num_threads, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> bufs;
    bufs.resize(static_cast<size_t>((2 * L + Lk) * HD));
    float* q = bufs.data();
    float* kT = q + L * HD;
    float* v = kT + Lk * HD;
    zero_key_padding(kT, L, Lk, HD);
    auto st = std::make_unique<TileState<HD>>();
    alignas(32) float qs[kQueryTile * HD];
    int counts[kQueryTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / H, g = task % H;
      project_head<HD>(x, d, b, L, *head_of[g].first, head_of[g].second, rope, q_scale, q, kT,
                       v);
      for (int64_t l0 = 0; l0 < L; l0 += kQueryTile) {
        const int nq = static_cast<int>(std::min<int64_t>(kQueryTile, L - l0));
        std::copy(q + l0 * HD, q + (l0 + nq) * HD, qs);
        std::fill(qs + nq * HD, qs + kQueryTile * HD, 0.f);
        st->reset();
        for (int64_t k0 = 0; k0 < L; k0 += kKeyBlock) {
          std::fill(counts, counts + nq, static_cast<int>(std::min<int64_t>(kKeyBlock, L - k0)));
          attend_block<HD>(qs, nq, kT + k0 * HD, v + k0 * HD, HD, counts, *st);
        }
        for (int i = 0; i < nq; ++i) st->write_row(i, out + (b * L + l0 + i) * d + g * HD);
      }
    }
  });
}

}  // namespace

void region_attention_forward_cpu(const float* x, const std::vector<const float*>& weights,
                                  const std::vector<const float*>& biases,
                                  const std::vector<int64_t>& widths, float* out, int64_t B,
                                  int64_t L, int64_t head_dim, float rope_base, int num_threads) {
  DT_CHECK(weights.size() == widths.size() && biases.size() == widths.size(),
           "region_attention_forward_cpu: one weight, bias and width per region");
  const int64_t d = std::accumulate(widths.begin(), widths.end(), int64_t{0});
  if (B * L * d == 0) return;
  const int64_t hd = head_dim, H = d / hd, Lk = round_up(L, kKeyBlock);

  // One scratch buffer per calling thread, grown as needed and reused: allocating (and
  // page-faulting) megabytes on every call would cost a noticeable part of the op.
  std::vector<Region> regions;
  int64_t packed_size = 0, offset = 0;
  for (size_t r = 0; r < widths.size(); ++r) {
    DT_CHECK(widths[r] % hd == 0, "region_attention_forward_cpu: width not a multiple of hd");
    const int64_t ncols = round_up(3 * widths[r], kCols);
    regions.push_back({weights[r], biases[r], widths[r], offset, offset / hd, ncols, nullptr});
    packed_size += widths[r] * ncols;
    offset += widths[r];
  }
  // Two (sample, head) tasks per thread or more: the fused path. Fewer (one sample of a few
  // heads on many cores) would leave threads idle; the two phases below split the attention
  // by query tile as well.
  const bool fused = B * H >= 2 * static_cast<int64_t>(std::max(num_threads, 1));
  const int64_t qv_size = fused ? 0 : B * H * L * hd, kT_size = fused ? 0 : B * H * hd * Lk;
  thread_local std::vector<float> scratch;
  const size_t need = static_cast<size_t>(packed_size + 2 * qv_size + kT_size);
  if (scratch.size() < need) scratch.resize(need);
  float* cursor = scratch.data();
  for (auto& r : regions) {
    r.packed = cursor;
    cursor += r.width * r.ncols;
  }
  const auto rope = rope_table(L, hd, rope_base);
  const float q_scale = kLog2e / std::sqrt(static_cast<float>(hd));

  parallel_for(static_cast<int64_t>(regions.size()), 1, num_threads, [&](int64_t b0, int64_t b1) {
    for (int64_t r = b0; r < b1; ++r) pack_weight(regions[r]);
  });

  if (fused) {
    dispatch_head_dim(hd, "region_attention", [&](auto tag) {
      project_and_attend<decltype(tag)::value>(x, regions, *rope, q_scale, out, B, L, d, H,
                                               num_threads);
    });
    return;
  }

  Projected p{cursor, cursor + qv_size, cursor + qv_size + kT_size, H, L, Lk, hd};
  for (int64_t bh = 0; bh < B * H; ++bh) zero_key_padding(p.kT + bh * hd * Lk, L, Lk, hd);

  // Phase 1: projection + bias + rotary, kRowTile rows of (B * L) per task.
  const int64_t rows = B * L, row_tasks = (rows + kRowTile - 1) / kRowTile;
  int64_t max_cols = 0;
  for (const auto& r : regions) max_cols = std::max(max_cols, r.ncols);
  parallel_for(row_tasks, 1, num_threads, [&](int64_t t0, int64_t t1) {
    std::vector<float> tmp(kRows * max_cols);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t first = t * kRowTile, last = std::min(rows, first + kRowTile);
      for (const auto& r : regions) {
        for (int64_t m = first; m < last; m += kRows) {
          int64_t idx[kRows];
          for (int i = 0; i < kRows; ++i) idx[i] = std::min(m + i, last - 1);
          project_rows(x, d, r, idx, tmp.data());
          for (int64_t i = 0; i < std::min<int64_t>(kRows, last - m); ++i)
            scatter_row(tmp.data() + i * r.ncols, r, *rope, q_scale, (m + i) / L, (m + i) % L, p);
        }
      }
    }
  });

  // Phase 2: attention per (b, head, query tile).
  dispatch_head_dim(hd, "region_attention", [&](auto tag) {
    attend<decltype(tag)::value>(p, out, B, d, num_threads);
  });
}

}  // namespace dt
