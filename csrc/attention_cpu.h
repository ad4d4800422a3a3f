// Building blocks shared by the two C++ attention kernels (region_attention_cpu.cpp and
// causal_cross_attention_cpu.cpp): 8-lane float vectors, a vectorised 2^x, and the online-softmax
// update of a tile of query rows against one block of keys.
//
// Vectors use the GCC/Clang `vector_size` extension rather than AVX intrinsics: the compiler maps
// them to AVX2 (with -march=native on this machine) or to pairs of SSE/NEON registers elsewhere,
// so the same source builds everywhere.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

// Without AVX (a portable, non -march=native build) GCC notes that 32-byte vector arguments
// have a different ABI. The vectors never cross a library boundary (everything here and in the
// two kernels that include this header is inline or internal), so the note is silenced for them.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace dt {
namespace attn_cpu {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

constexpr int kLanes = 8;
// Keys per block of the online softmax (one row's 64 scores are 8 vectors).
constexpr int kKeyBlock = 64;
constexpr int kKeyVecs = kKeyBlock / kLanes;
constexpr float kLog2e = 1.4426950408889634f;

inline v8f load(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
inline v8f splat(float x) { return v8f{x, x, x, x, x, x, x, x}; }
inline v8f iota() { return v8f{0, 1, 2, 3, 4, 5, 6, 7}; }

// Keeps a loaded vector in a register. Without it GCC re-reads the same memory operand in every
// FMA of a micro-kernel, and loads, not FMAs, become the limit.
#if defined(__x86_64__) && defined(__AVX__)
#define DT_PIN(v) asm("" : "+x"(v))
#else
#define DT_PIN(v) (void)0
#endif

inline v8f vmax(v8f a, v8f b) { return a > b ? a : b; }
// As function objects for reduce_rows (a function pointer might not be inlined).
struct MaxOp {
  __attribute__((always_inline)) v8f operator()(v8f a, v8f b) const { return vmax(a, b); }
};
struct AddOp {
  __attribute__((always_inline)) v8f operator()(v8f a, v8f b) const { return a + b; }
};

// Lanes of two vectors picked by index (0-7: a, 8-15: b), as one shuffle instruction where the
// pattern is a native one.
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define DT_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define DT_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, v8i{__VA_ARGS__})
#endif

// Lane r of the result is op over the eight lanes of v[r]. Eight horizontal reductions at once
// take 21 vector instructions (unpack, 64-bit unpack, 128-bit permute), where one at a time is a
// serial chain of seven scalar steps per row, the latency of which dominated the softmax.
// Always inlined: an out-of-line copy returning a vector would also trip GCC's -Wpsabi note on
// builds without AVX.
template <typename Op>
inline __attribute__((always_inline)) v8f reduce_rows(const v8f* v, Op op) {
  v8f b[4], c[2];
  for (int i = 0; i < 4; ++i)  // lanes [x0, x1, x0, x1 | ...] of the pair x = v[2i], v[2i+1]
    b[i] = op(DT_SHUFFLE(v[2 * i], v[2 * i + 1], 0, 8, 1, 9, 4, 12, 5, 13),
              DT_SHUFFLE(v[2 * i], v[2 * i + 1], 2, 10, 3, 11, 6, 14, 7, 15));
  for (int i = 0; i < 2; ++i)  // lanes [x0, x1, x2, x3 | x0, x1, x2, x3] of four rows
    c[i] = op(DT_SHUFFLE(b[2 * i], b[2 * i + 1], 0, 1, 8, 9, 4, 5, 12, 13),
              DT_SHUFFLE(b[2 * i], b[2 * i + 1], 2, 3, 10, 11, 6, 7, 14, 15));
  return op(DT_SHUFFLE(c[0], c[1], 0, 1, 2, 3, 8, 9, 10, 11),
            DT_SHUFFLE(c[0], c[1], 4, 5, 6, 7, 12, 13, 14, 15));
}

// 2^x for x <= 0 (what softmax needs after subtracting the running max), relative error ~2e-7.
// x is clamped at -126, so very negative inputs give ~1e-38 instead of 0; callers zero masked
// lanes explicitly.
inline v8f exp2_nonpos(v8f x) {
  const v8f lo = splat(-126.f);
  x = x < lo ? lo : x;
  // Round to nearest with the 1.5 * 2^23 trick (exact for |x| < 2^22), then 2^f on [-0.5, 0.5]
  // by a degree-6 polynomial, scaled by 2^n built directly in the exponent bits.
  const v8f magic = splat(12582912.f);
  const v8f n = (x + magic) - magic;
  const v8f f = x - n;
  v8f p = splat(1.535336188319500e-4f);
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  const v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
  v8f scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Keys are stored transposed one block at a time: block j holds dims x kKeyBlock keys, so one
// block's keys are a contiguous 8 KiB (head dim 32) the score loop walks at a 256-byte stride.
// A plain (hd, L) transpose would step by L floats per dim: at L = 256 or 512 every row of a
// block falls in the same few L1 sets (4 KiB aliasing) and evicts the others. Returns the offset
// of key `k`, dim 0, within one head's transposed keys.
inline int64_t key_block_index(int64_t k, int64_t head_dim) {
  return (k / kKeyBlock) * head_dim * kKeyBlock + k % kKeyBlock;
}

// Queries per attention tile; the micro-kernels work on groups of kGroup rows x 16 columns
// (12 accumulators, 2 pinned operands and a broadcast: 15 of the 16 AVX2 registers).
constexpr int kGroup = 6;
constexpr int kQueryTile = 8 * kGroup;

// Online-softmax state of a tile of query rows: running max m and sum l of 2^(score - m) per
// row, and the unnormalised output o = sum_k 2^(score_k - m) v_k (HD floats per row).
template <int HD>
struct TileState {
  static_assert(HD % 16 == 0, "head dim must be a multiple of 16");
  alignas(32) float o[kQueryTile * HD];
  alignas(32) float p[kQueryTile * kKeyBlock];  // scores, then probabilities, of one key block
  alignas(32) float m[kQueryTile], l[kQueryTile], alpha[kQueryTile];

  void reset() {
    std::fill(o, o + kQueryTile * HD, 0.f);
    std::fill(m, m + kQueryTile, -std::numeric_limits<float>::infinity());
    std::fill(l, l + kQueryTile, 0.f);
  }
  void write_row(int i, float* out) const {
    const v8f inv = splat(1.f / l[i]);
    for (int j = 0; j < HD; j += kLanes) store(out + j, load(o + i * HD + j) * inv);
  }
};

// Folds one block of keys into the tile state, as three small register-blocked steps:
//   1. scores S = q kT for kGroup rows x 16 keys at a time;
//   2. per row: mask keys >= counts[i], new max, P = 2^(S - m), rescale factor alpha;
//   3. O = alpha O + P V for kGroup rows x 16 dims at a time.
//   q:      (kQueryTile, HD) rows pre-multiplied by softmax_scale * log2(e); rows >= nq zero
//   kT:     the block's keys transposed, kT[d * kKeyBlock + k] (see key_block_index), all
//           kKeyBlock columns readable
//   v:      values, v[k * v_stride + d] for k < max of counts
//   counts: keys of this block each row may see (0..kKeyBlock), for rows < nq
template <int HD>
inline void attend_block(const float* q, int nq, const float* kT,
                         const float* v, int64_t v_stride, const int* counts, TileState<HD>& st) {
  const int groups = (nq + kGroup - 1) / kGroup;
  int group_keys[kQueryTile / kGroup];  // keys any row of the group sees in this block
  for (int g = 0; g < groups; ++g) {
    int keys = 0;
    for (int r = g * kGroup; r < std::min(nq, (g + 1) * kGroup); ++r)
      keys = std::max(keys, counts[r]);
    group_keys[g] = keys;
  }

  for (int g = 0; g < groups; ++g) {
    const float* qg = q + g * kGroup * HD;
    // Scores past the group's last visible key are never computed (step 2 masks them).
    for (int k0 = 0; k0 < group_keys[g]; k0 += 16) {
      v8f acc[kGroup][2] = {};
      const float* kr = kT + k0;
      for (int d = 0; d < HD; ++d, kr += kKeyBlock) {
        v8f k_lo = load(kr), k_hi = load(kr + kLanes);
        DT_PIN(k_lo);
        DT_PIN(k_hi);
        for (int r = 0; r < kGroup; ++r) {
          const v8f qv = splat(qg[r * HD + d]);
          acc[r][0] += qv * k_lo;
          acc[r][1] += qv * k_hi;
        }
      }
      for (int r = 0; r < kGroup; ++r) {
        float* pr = st.p + (g * kGroup + r) * kKeyBlock + k0;
        store(pr, acc[r][0]);
        store(pr + kLanes, acc[r][1]);
      }
    }
  }

  // Step 2, eight rows at a time so that the row maxima and sums are reduced together.
  const v8f neg_inf = splat(-std::numeric_limits<float>::infinity());
  const v8f zero = {};
  const int rows = (groups * kGroup + kLanes - 1) / kLanes * kLanes;  // <= kQueryTile
  for (int i0 = 0; i0 < rows; i0 += kLanes) {
    int count[kLanes];
    bool full = true;  // every row sees the whole block: no masking
    for (int r = 0; r < kLanes; ++r) {
      count[r] = i0 + r < nq ? counts[i0 + r] : 0;
      full = full && count[r] >= kKeyBlock;
    }
    v8f row_max[kLanes];
    for (int r = 0; r < kLanes; ++r) {
      float* pr = st.p + (i0 + r) * kKeyBlock;
      v8f m = neg_inf;
      if (full) {
        for (int c = 0; c < kKeyVecs; ++c) m = vmax(m, load(pr + c * kLanes));
      } else {  // keys past the row's count become -inf, in place, for the exponent pass
        const v8f limit = splat(static_cast<float>(count[r]));
        for (int c = 0; c < kKeyVecs; ++c) {
          const v8f idx = iota() + static_cast<float>(c * kLanes);
          const v8f sc = idx < limit ? load(pr + c * kLanes) : neg_inf;
          store(pr + c * kLanes, sc);
          m = vmax(m, sc);
        }
      }
      row_max[r] = m;
    }
    const v8f m_old = load(st.m + i0);
    const v8f m_new = vmax(m_old, reduce_rows(row_max, MaxOp()));
    // 2^(m_old - m_new): ~0 on a row's first visible block (its o and l are still 0), 1 for a
    // row that has seen no key yet (m_new = -inf, where the difference would be NaN).
    const v8f alpha = m_new > neg_inf ? exp2_nonpos(m_old - m_new) : splat(1.f);
    store(st.m + i0, m_new);
    store(st.alpha + i0, alpha);
    v8f row_sum[kLanes];
    for (int r = 0; r < kLanes; ++r) {
      float* pr = st.p + (i0 + r) * kKeyBlock;
      const v8f mv = splat(st.m[i0 + r]);
      v8f sum = zero;
      for (int c = 0; c < kKeyVecs; ++c) {
        const v8f sc = load(pr + c * kLanes);
        v8f e = exp2_nonpos(sc - mv);
        if (!full) e = sc > neg_inf ? e : zero;  // masked keys contribute exactly 0
        sum += e;
        store(pr + c * kLanes, e);
      }
      row_sum[r] = sum;
    }
    store(st.l + i0, load(st.l + i0) * alpha + reduce_rows(row_sum, AddOp()));
  }

  for (int g = 0; g < groups; ++g) {
    const int keys = group_keys[g];
    const float* pg = st.p + g * kGroup * kKeyBlock;
    for (int j = 0; j < HD; j += 16) {
      v8f acc[kGroup][2];
      for (int r = 0; r < kGroup; ++r) {
        const float* orow = st.o + (g * kGroup + r) * HD + j;
        const v8f a = splat(st.alpha[g * kGroup + r]);
        acc[r][0] = load(orow) * a;
        acc[r][1] = load(orow + kLanes) * a;
      }
      const float* vr = v + j;
      for (int k = 0; k < keys; ++k, vr += v_stride) {
        v8f v_lo = load(vr), v_hi = load(vr + kLanes);
        DT_PIN(v_lo);
        DT_PIN(v_hi);
        for (int r = 0; r < kGroup; ++r) {
          const v8f pv = splat(pg[r * kKeyBlock + k]);
          acc[r][0] += pv * v_lo;
          acc[r][1] += pv * v_hi;
        }
      }
      for (int r = 0; r < kGroup; ++r) {
        float* orow = st.o + (g * kGroup + r) * HD + j;
        store(orow, acc[r][0]);
        store(orow + kLanes, acc[r][1]);
      }
    }
  }
}

// Calls body(std::integral_constant<int, HD>{}) for the head dims the CPU kernels are compiled
// for; the body reads HD back as `decltype(tag)::value`.
template <typename Body>
inline void dispatch_head_dim(int64_t head_dim, const char* op, Body&& body) {
  switch (head_dim) {
    case 16: body(std::integral_constant<int, 16>{}); return;
    case 32: body(std::integral_constant<int, 32>{}); return;
    case 64: body(std::integral_constant<int, 64>{}); return;
    case 128: body(std::integral_constant<int, 128>{}); return;
    default:
      throw std::invalid_argument(std::string(op) +
                                  ": the C++ kernel supports head dims 16, 32, 64, 128; got " +
                                  std::to_string(head_dim));
  }
}

}  // namespace attn_cpu
}  // namespace dt
