// Hot element-wise helpers for the Kolors engine (see include/kolors_kernels.h).
#include "kolors_kernels.h"
#include "exp_poly.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KK_X86 1
#define KK_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define KK_X86 0
#endif

static int kk_state = -1;   // -1 unknown, 0 scalar, 1 avx2
static int kk_forced_scalar = 0;

int kk_has_avx2(void) {
    if (kk_forced_scalar) return 0;
    if (kk_state < 0) {
#if KK_X86
        __builtin_cpu_init();
        kk_state = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c")) ? 1 : 0;
#else
        kk_state = 0;
#endif
    }
    return kk_state;
}

void kk_force_scalar(int on) { kk_forced_scalar = on ? 1 : 0; }

// =========================================================================================
// Scalar reference paths
// =========================================================================================

static inline float f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do { e++; mant <<= 1; } while ((mant & 0x400u) == 0);
            mant &= 0x3FFu;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f32_to_f16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7FFFFFFFu;
    if (absx >= 0x7F800000u) {  // inf or nan
        return (uint16_t)(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0));
    }
    if (absx >= 0x477FF000u) {  // rounds to >= 65520 -> inf
        return (uint16_t)(sign | 0x7C00u);
    }
    if (absx < 0x38800000u) {  // below smallest normal half: subnormal or zero
        // value = absx as float; half subnormal unit = 2^-24
        float a;
        memcpy(&a, &absx, 4);
        float scaled = a * 16777216.0f;  // in units of 2^-24, exact
        // round half to even
        float r = nearbyintf(scaled);
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t e = (absx >> 23) - 112u;
    uint32_t m = absx & 0x7FFFFFu;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h += 1;  // may carry into exponent
    return (uint16_t)(sign | h);
}

static inline float bf16_bits_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f32_to_bf16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);  // quiet nan
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7FFFu + lsb;
    return (uint16_t)(x >> 16);
}

static inline float sigmoidf_s(float x) { return 1.0f / (1.0f + expf(-x)); }

// =========================================================================================
// AVX2 paths
// =========================================================================================
#if KK_X86

KK_AVX2 static inline __m256 exp256(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f);
    const __m256 lo = _mm256_set1_ps(-87.3365447504f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(x, hi);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, z, x);
    y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
    __m256i n = _mm256_cvttps_epi32(fx);
    n = _mm256_add_epi32(n, _mm256_set1_epi32(127));
    n = _mm256_slli_epi32(n, 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(n));
    return _mm256_andnot_ps(under, y);
}

KK_AVX2 static inline __m256 sigmoid256(__m256 x) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// Rational approximation of erf on [-4, 4] (as in Eigen / XLA), accurate to a few ulp.
KK_AVX2 static inline __m256 erf256(__m256 a) {
    __m256 x = _mm256_max_ps(_mm256_min_ps(a, _mm256_set1_ps(4.0f)), _mm256_set1_ps(-4.0f));
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f), _mm256_set1_ps(2.77068142495902e-08f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
    p = _mm256_mul_ps(x, p);
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f), _mm256_set1_ps(-2.13374055278905e-04f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
    return _mm256_div_ps(p, q);
}

KK_AVX2 static inline __m256 gelu256(__m256 x) {
    __m256 e = erf256(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

KK_AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    __m128 s = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, s);
    s = _mm_add_ss(s, sh);
    return _mm_cvtss_f32(s);
}

KK_AVX2 static inline float hmax256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

KK_AVX2 static void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) dst[i] = f16_bits_to_f32(src[i]);
}

KK_AVX2 static void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = f32_to_f16_bits(src[i]);
}

KK_AVX2 static void bf16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        __m256i w = _mm256_cvtepu16_epi32(h);
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    for (; i < n; i++) dst[i] = bf16_bits_to_f32(src[i]);
}

#define KK_UNARY_AVX2(name, expr)                                              \
    KK_AVX2 static void name##_avx2(const float *in, float *out, size_t n) {   \
        size_t i = 0;                                                          \
        for (; i + 8 <= n; i += 8) {                                           \
            __m256 x = _mm256_loadu_ps(in + i);                                \
            _mm256_storeu_ps(out + i, (expr));                                 \
        }                                                                      \
        if (i < n) {                                                           \
            float tin[8] = {0}, tout[8];                                       \
            memcpy(tin, in + i, (n - i) * sizeof(float));                      \
            __m256 x = _mm256_loadu_ps(tin);                                   \
            _mm256_storeu_ps(tout, (expr));                                    \
            memcpy(out + i, tout, (n - i) * sizeof(float));                    \
        }                                                                      \
    }

KK_UNARY_AVX2(exp, exp256(x))
KK_UNARY_AVX2(silu, _mm256_mul_ps(x, sigmoid256(x)))
KK_UNARY_AVX2(gelu_erf, gelu256(x))
KK_UNARY_AVX2(quick_gelu, _mm256_mul_ps(x, sigmoid256(_mm256_mul_ps(x, _mm256_set1_ps(1.702f)))))
KK_UNARY_AVX2(erf, erf256(x))

KK_AVX2 static inline __m256 gelu_tanh256(__m256 x) {
    // 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))), tanh(y) = 2σ(2y) − 1
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 y = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f),
                             _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
    __m256 t = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(2.0f), sigmoid256(_mm256_add_ps(y, y))),
                             _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), t));
}
KK_UNARY_AVX2(gelu_tanh, gelu_tanh256(x))

KK_AVX2 static void softmax_row_avx2(float *x, size_t n) {
    size_t i;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (i = 0; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    float m = hmax256(vmax);
    for (; i < n; i++) if (x[i] > m) m = x[i];
    if (m == -INFINITY) {  // fully masked row: torch gives NaN; we give zeros
        memset(x, 0, n * sizeof(float));
        return;
    }
    __m256 vm = _mm256_set1_ps(m);
    __m256 vsum = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float s = hsum256(vsum);
    for (; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    __m256 inv = _mm256_set1_ps(1.0f / s);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    float sinv = 1.0f / s;
    for (; i < n; i++) x[i] *= sinv;
}

KK_AVX2 static void geglu_avx2(const float *in, float *out, size_t rows, size_t inner) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = in + r * 2 * inner;
        const float *g = a + inner;
        float *o = out + r * inner;
        size_t j = 0;
        for (; j + 8 <= inner; j += 8)
            _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_loadu_ps(a + j), gelu256(_mm256_loadu_ps(g + j))));
        for (; j < inner; j++) o[j] = a[j] * 0.5f * g[j] * (1.0f + erff(g[j] * 0.70710678118654752f));
    }
}

KK_AVX2 static void swiglu_avx2(const float *in, float *out, size_t rows, size_t inner) {
    for (size_t r = 0; r < rows; r++) {
        const float *a = in + r * 2 * inner;
        const float *b = a + inner;
        float *o = out + r * inner;
        size_t j = 0;
        for (; j + 8 <= inner; j += 8) {
            __m256 x = _mm256_loadu_ps(a + j);
            _mm256_storeu_ps(o + j, _mm256_mul_ps(_mm256_mul_ps(x, sigmoid256(x)), _mm256_loadu_ps(b + j)));
        }
        for (; j < inner; j++) o[j] = a[j] * sigmoidf_s(a[j]) * b[j];
    }
}

#endif  // KK_X86

// =========================================================================================
// Public entry points
// =========================================================================================

void kk_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { f16_to_f32_avx2(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = f16_bits_to_f32(src[i]);
}

void kk_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { bf16_to_f32_avx2(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = bf16_bits_to_f32(src[i]);
}

void kk_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { f32_to_f16_avx2(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_f16_bits(src[i]);
}

#if KK_X86
// f32_to_bf16_bits eight lanes at a time: the same integer round-to-nearest-even, NaN made quiet.
KK_AVX2 static void f32_to_bf16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x40);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256 f = _mm256_loadu_ps(src + i + 8 * h);
            __m256i x = _mm256_castps_si256(f);
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
            __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, bias)), 16);
            __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
            __m256i quieted = _mm256_or_si256(_mm256_srli_epi32(x, 16), quiet);
            r[h] = _mm256_blendv_epi8(rounded, quieted, nan);
        }
        // pack the two halves' low 16 bits (values fit: they are < 0x10000) and restore lane order
        __m256i packed = _mm256_packus_epi32(r[0], r[1]);
        packed = _mm256_permute4x64_epi64(packed, 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), packed);
    }
    for (; i < n; i++) dst[i] = f32_to_bf16_bits(src[i]);
}
#endif

void kk_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { f32_to_bf16_avx2(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16_bits(src[i]);
}

#if KK_X86
// fp16 → float32 (exact, F16C) → bf16 (round to nearest even) in registers: one pass.
KK_AVX2 static void f16_to_bf16_avx2(const uint16_t *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x40);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256 f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i + 8 * h)));
            __m256i x = _mm256_castps_si256(f);
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
            __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(x, _mm256_add_epi32(lsb, bias)), 16);
            __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
            r[h] = _mm256_blendv_epi8(rounded, _mm256_or_si256(_mm256_srli_epi32(x, 16), quiet), nan);
        }
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8));
    }
    for (; i < n; i++) dst[i] = f32_to_bf16_bits(f16_bits_to_f32(src[i]));
}
#endif

void kk_f16_to_bf16(const uint16_t *src, uint16_t *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { f16_to_bf16_avx2(src, dst, n); return; }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16_bits(f16_bits_to_f32(src[i]));
}

static inline __attribute__((always_inline)) void round_bf16_body(const float *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)f32_to_bf16_bits(src[i]) << 16;
        memcpy(&dst[i], &v, 4);
    }
}

#if KK_X86
KK_AVX2 static void round_bf16_avx2(const float *src, float *dst, size_t n) { round_bf16_body(src, dst, n); }
#endif

void kk_round_bf16(const float *src, float *dst, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { round_bf16_avx2(src, dst, n); return; }
#endif
    round_bf16_body(src, dst, n);
}

float kk_exp_scalar(float x) { return kk_exp_poly(x); }

void kk_exp(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { exp_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = expf(in[i]);
}

void kk_silu(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { silu_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = in[i] * sigmoidf_s(in[i]);
}

void kk_gelu_erf(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { gelu_erf_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * in[i] * (1.0f + erff(in[i] * 0.70710678118654752f));
}

void kk_gelu_tanh(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { gelu_tanh_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) {
        float x = in[i];
        out[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    }
}

void kk_quick_gelu(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { quick_gelu_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = in[i] * sigmoidf_s(1.702f * in[i]);
}

void kk_erf(const float *in, float *out, size_t n) {
#if KK_X86
    if (kk_has_avx2()) { erf_avx2(in, out, n); return; }
#endif
    for (size_t i = 0; i < n; i++) out[i] = erff(in[i]);
}

void kk_geglu(const float *in, float *out, size_t rows, size_t inner) {
#if KK_X86
    if (kk_has_avx2()) { geglu_avx2(in, out, rows, inner); return; }
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *a = in + r * 2 * inner;
        const float *g = a + inner;
        for (size_t j = 0; j < inner; j++)
            out[r * inner + j] = a[j] * 0.5f * g[j] * (1.0f + erff(g[j] * 0.70710678118654752f));
    }
}

void kk_swiglu(const float *in, float *out, size_t rows, size_t inner) {
#if KK_X86
    if (kk_has_avx2()) { swiglu_avx2(in, out, rows, inner); return; }
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *a = in + r * 2 * inner;
        const float *b = a + inner;
        for (size_t j = 0; j < inner; j++) out[r * inner + j] = a[j] * sigmoidf_s(a[j]) * b[j];
    }
}

void kk_softmax_rows(float *x, size_t rows, size_t cols, size_t stride) {
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * stride;
#if KK_X86
        if (kk_has_avx2()) { softmax_row_avx2(row, cols); continue; }
#endif
        float m = -INFINITY;
        for (size_t i = 0; i < cols; i++) if (row[i] > m) m = row[i];
        if (m == -INFINITY) { memset(row, 0, cols * sizeof(float)); continue; }
        float s = 0;
        for (size_t i = 0; i < cols; i++) { row[i] = expf(row[i] - m); s += row[i]; }
        float inv = 1.0f / s;
        for (size_t i = 0; i < cols; i++) row[i] *= inv;
    }
}

// exp(x - m) in place over n values; returns their float32 sum (before any rounding).
#if KK_X86
KK_AVX2 static float exp_shift_sum_avx2(float *x, size_t n, float m) {
    size_t i = 0;
    __m256 vm = _mm256_set1_ps(m), vsum = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float s = hsum256(vsum);
    for (; i < n; i++) { x[i] = kk_exp_poly(x[i] - m); s += x[i]; }
    return s;
}
#endif

// exp256's arithmetic in every lane and tail (kk_exp_poly), so the probabilities are the same
// floats whichever path computes them (see kk_flash_attention_bf16).
static float exp_shift_sum(float *x, size_t n, float m) {
#if KK_X86
    if (kk_has_avx2()) return exp_shift_sum_avx2(x, n, m);
#endif
    float s = 0;
    for (size_t i = 0; i < n; i++) { x[i] = kk_exp_poly(x[i] - m); s += x[i]; }
    return s;
}

void kk_softmax_bf16_blocks(float *x, size_t rows, size_t cols, size_t stride, size_t block,
                            uint16_t *bits, size_t bits_stride, float *rescale, float *sums) {
    size_t nblocks = (cols + block - 1) / block;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * stride;
        float m = -INFINITY, l = 0;
        for (size_t b = 0; b < nblocks; b++) {
            float *s = row + b * block;
            size_t n = cols - b * block < block ? cols - b * block : block;
            float bm = m;
            for (size_t i = 0; i < n; i++) if (s[i] > bm) bm = s[i];
            float c = 1;
            if (bm == -INFINITY) {  // everything so far masked: these probabilities are 0
                memset(s, 0, n * sizeof(float));
            } else {
                float blockSum = exp_shift_sum(s, n, bm);
                c = expf(m - bm);  // 0 for the first unmasked block
                l = blockSum + c * l;
                m = bm;
                kk_round_bf16(s, s, n);
            }
            if (rescale) rescale[r * nblocks + b] = c;
            if (bits) kk_f32_to_bf16(s, bits + r * bits_stride + b * block, n);
        }
        sums[r] = l == 0 ? 1 : l;  // a fully masked row: zeros out
    }
}

#if KK_X86
// Sixteen partial sums in four 4-lane double accumulators: the same two-pass double arithmetic,
// but vectorised instead of one dependent add per element.
KK_AVX2 static void mean_var_avx2(const float *x, size_t n, double *mean, double *var) {
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) s += x[i];
    const double m = n ? s / (double)n : 0;
    const __m256d mv = _mm256_set1_pd(m);
    a0 = _mm256_setzero_pd(); a1 = a0; a2 = a0; a3 = a0;
    for (i = 0; i + 16 <= n; i += 16) {
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), mv);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)), mv);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)), mv);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)), mv);
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    _mm256_storeu_pd(t, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    double q = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) { double d = x[i] - m; q += d * d; }
    *mean = m;
    *var = n ? q / (double)n : 0;
}
#endif

void kk_mean_var(const float *x, size_t n, double *mean, double *var) {
#if KK_X86
    if (kk_has_avx2()) { mean_var_avx2(x, n, mean, var); return; }
#endif
    // Two passes in double: robust for the large-offset activations the VAE produces.
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    double m = n ? s / (double)n : 0;
    double q = 0;
    for (size_t i = 0; i < n; i++) { double d = x[i] - m; q += d * d; }
    *mean = m;
    *var = n ? q / (double)n : 0;
}

void kk_layernorm_rows(const float *in, float *out, size_t rows, size_t cols,
                       const float *gamma, const float *beta, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *y = out + r * cols;
        double mean, var;
        kk_mean_var(x, cols, &mean, &var);
        float m = (float)mean;
        float rstd = (float)(1.0 / sqrt(var + (double)eps));
        for (size_t c = 0; c < cols; c++) {
            float v = (x[c] - m) * rstd;
            if (gamma) v *= gamma[c];
            if (beta) v += beta[c];
            y[c] = v;
        }
    }
}

void kk_rmsnorm_rows(const float *in, float *out, size_t rows, size_t cols,
                     const float *gamma, float eps) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *y = out + r * cols;
        double q = 0;
        for (size_t c = 0; c < cols; c++) q += (double)x[c] * (double)x[c];
        float rs = (float)(1.0 / sqrt(q / (double)cols + (double)eps));
        for (size_t c = 0; c < cols; c++) {
            float v = x[c] * rs;
            y[c] = gamma ? v * gamma[c] : v;
        }
    }
}

void kk_norm_apply_channels(const float *in, float *out, size_t channels, size_t hw,
                            float mean, float rstd, const float *gamma, const float *beta,
                            int silu) {
    for (size_t c = 0; c < channels; c++) {
        float g = gamma ? gamma[c] : 1.0f;
        float b = beta ? beta[c] : 0.0f;
        // (x - mean) * rstd * g + b  ==  x * (rstd*g) + (b - mean*rstd*g)
        float a = rstd * g;
        float s = b - mean * a;
        const float *x = in + c * hw;
        float *y = out + c * hw;
        for (size_t i = 0; i < hw; i++) y[i] = x[i] * a + s;
        if (silu) kk_silu(y, y, hw);
    }
}

void kk_add(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void kk_mul(const float *a, const float *b, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

void kk_scale(const float *a, float s, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * s;
}

void kk_axpy(float a, const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void kk_add_bias_rows(const float *in, const float *bias, float *out, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * cols;
        float *y = out + r * cols;
        for (size_t c = 0; c < cols; c++) y[c] = x[c] + bias[c];
    }
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) { float a = fabsf(x[i]); if (a > m) m = a; }
    return m;
}

void kk_quantize_row_int8(const float *w, int8_t *q, size_t n, float *scale) {
    float s = max_abs(w, n) / 127.0f;
    *scale = s;
    if (s == 0) { memset(q, 0, n); return; }
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(w[i] / s);  /* current rounding mode: to nearest, ties to even */
        if (v > 127) v = 127;
        if (v < -127) v = -127;
        q[i] = (int8_t)v;
    }
}

void kk_dequantize_int8(const int8_t *q, float scale, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)q[i] * scale;
}

void kk_quantize_row_u7(const float *x, uint8_t *u, size_t n, float *scale) {
    float s = max_abs(x, n) / 63.0f;
    *scale = s;
    if (s == 0) { memset(u, 64, n); return; }
    for (size_t i = 0; i < n; i++) {
        float v = nearbyintf(x[i] / s);
        if (v > 63) v = 63;
        if (v < -63) v = -63;
        u[i] = (uint8_t)(v + 64);
    }
}

void kk_dequantize_gemm_u7(const int32_t *acc, const float *sa, const float *sw, const int32_t *wsum,
                           const float *bias, float *y, size_t m, size_t n) {
    for (size_t i = 0; i < m; i++) {
        const int32_t *a = acc + i * n;
        float *o = y + i * n;
        for (size_t j = 0; j < n; j++) {
            float v = sa[i] * sw[j] * (float)(a[j] - 64 * wsum[j]);
            o[j] = bias ? v + bias[j] : v;
        }
    }
}

void kk_im2col(const float *x, size_t C, size_t H, size_t W, size_t kh, size_t kw,
               size_t stride_h, size_t stride_w, size_t pad_top, size_t pad_left,
               size_t oh, size_t ow, size_t oy0, size_t oy1, size_t c0, size_t c1, float *cols) {
    (void)C;
    (void)oh;
    const size_t npix = (oy1 - oy0) * ow;
    for (size_t c = c0; c < c1; c++) {
        const float *xc = x + c * H * W;
        for (size_t ky = 0; ky < kh; ky++) {
            for (size_t kx = 0; kx < kw; kx++) {
                float *dst = cols + ((c * kh + ky) * kw + kx) * npix;
                for (size_t oy = oy0; oy < oy1; oy++) {
                    long iy = (long)(oy * stride_h + ky) - (long)pad_top;
                    float *d = dst + (oy - oy0) * ow;
                    if (iy < 0 || iy >= (long)H) { memset(d, 0, ow * sizeof(float)); continue; }
                    const float *src = xc + (size_t)iy * W;
                    if (stride_w == 1) {
                        long start = (long)kx - (long)pad_left;  // input x for ox = 0
                        size_t ox = 0;
                        for (; ox < ow && start + (long)ox < 0; ox++) d[ox] = 0.0f;
                        long limL = (long)W - start;   // first ox whose input is past the right edge
                        if (limL < 0) limL = 0;
                        if (limL > (long)ow) limL = (long)ow;
                        size_t lim = (size_t)limL;
                        if (lim > ox) { memcpy(d + ox, src + start + (long)ox, (lim - ox) * sizeof(float)); ox = lim; }
                        for (; ox < ow; ox++) d[ox] = 0.0f;
                    } else {
                        for (size_t ox = 0; ox < ow; ox++) {
                            long ix = (long)(ox * stride_w + kx) - (long)pad_left;
                            d[ox] = (ix >= 0 && ix < (long)W) ? src[ix] : 0.0f;
                        }
                    }
                }
            }
        }
    }
}

void kk_upsample_nearest(const float *x, size_t C, size_t H, size_t W,
                         size_t oh, size_t ow, float *out) {
    const float sh = (float)H / (float)oh;
    const float sw = (float)W / (float)ow;
    for (size_t c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        float *oc = out + c * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            size_t iy = (size_t)floorf((float)oy * sh);
            if (iy > H - 1) iy = H - 1;
            const float *src = xc + iy * W;
            float *dst = oc + oy * ow;
            for (size_t ox = 0; ox < ow; ox++) {
                size_t ix = (size_t)floorf((float)ox * sw);
                if (ix > W - 1) ix = W - 1;
                dst[ox] = src[ix];
            }
        }
    }
}

void kk_transpose(const float *in, float *out, size_t rows, size_t cols) {
    const size_t B = 32;
    for (size_t r0 = 0; r0 < rows; r0 += B) {
        size_t r1 = r0 + B < rows ? r0 + B : rows;
        for (size_t c0 = 0; c0 < cols; c0 += B) {
            size_t c1 = c0 + B < cols ? c0 + B : cols;
            for (size_t r = r0; r < r1; r++)
                for (size_t c = c0; c < c1; c++) out[c * rows + r] = in[r * cols + c];
        }
    }
}
