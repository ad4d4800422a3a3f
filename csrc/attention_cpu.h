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

inline float hmax(v8f v) {
  float m = v[0];
  for (int i = 1; i < kLanes; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float hsum(v8f v) {
  float s = 0.f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
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

inline float hmax(const v8f* v, int n) {
  v8f m = v[0];
  for (int c = 1; c < n; ++c) m = v[c] > m ? v[c] : m;
  return hmax(m);
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
  float m[kQueryTile], l[kQueryTile], alpha[kQueryTile];

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
//   kT:     keys transposed, kT[d * kt_stride + k], all kKeyBlock columns readable
//   v:      values, v[k * v_stride + d] for k < max of counts
//   counts: keys of this block each row may see (0..kKeyBlock), for rows < nq
template <int HD>
inline void attend_block(const float* q, int nq, const float* kT, int64_t kt_stride,
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
      for (int d = 0; d < HD; ++d, kr += kt_stride) {
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

  const v8f neg_inf = splat(-std::numeric_limits<float>::infinity());
  const v8f zero = {};
  for (int i = 0; i < groups * kGroup; ++i) {
    float* pr = st.p + i * kKeyBlock;
    const int count = i < nq ? counts[i] : 0;
    if (count <= 0) {  // nothing visible in this block: the row's state is unchanged
      std::fill(pr, pr + kKeyBlock, 0.f);
      st.alpha[i] = 1.f;
      continue;
    }
    const v8f limit = splat(static_cast<float>(count));
    v8f s[kKeyVecs];
    for (int c = 0; c < kKeyVecs; ++c) {
      const v8f idx = iota() + static_cast<float>(c * kLanes);
      s[c] = idx < limit ? load(pr + c * kLanes) : neg_inf;
    }
    const float m_blk = hmax(s, kKeyVecs);
    const float m_new = m_blk > st.m[i] ? m_blk : st.m[i];
    const v8f mv = splat(m_new);
    v8f sum = {};
    for (int c = 0; c < kKeyVecs; ++c) {
      const v8f e = exp2_nonpos(s[c] - mv);
      const v8f pc = s[c] > neg_inf ? e : zero;  // masked keys contribute exactly 0
      sum += pc;
      store(pr + c * kLanes, pc);
    }
    st.alpha[i] = std::exp2(st.m[i] - m_new);  // 0 on the row's first visible block
    st.l[i] = st.l[i] * st.alpha[i] + hsum(sum);
    st.m[i] = m_new;
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
