// Fused bf16 attention on AVX512-BF16 (see kk_flash_attention_bf16 in kolors_kernels.h).
//
// The arithmetic and rounding are those of torch's CPU flash attention in bf16, which diffusers
// runs: scores S = Q·Kᵀ summed in float32 from bf16 operands, times the scale, plus the mask;
// keys in blocks of 512 with an online softmax whose probabilities exp(S − running max) are
// rounded to bf16 unnormalised and multiplied with V (float32 sums) into a float32 accumulator,
// rescaled by exp(old max − new max) when the maximum moves, and divided by the float32 sum of
// the unrounded exponentials at the end. The float32-BLAS emulation (OpenBLASBackend with bf16
// operands + kk_softmax_bf16_blocks) takes the same steps; the exponentials are bit-identical
// (kk_exp_poly), so the two differ only in the order of float32 sums.
//
// Products are VDPBF16PS dot products of bf16 pairs: K is packed once per (batch, head) as
// [key tile of 16][pair of head dims][16 keys][2], V as [pair of keys][column tile of 16][16][2],
// so a broadcast pair of Q (or of P) times one packed vector adds 16 outputs. Scores, probabilities
// and the output accumulator of one block of query rows stay in cache; nothing of size
// queries × keys is ever written to memory.
#include "kolors_kernels.h"
#include "exp_poly.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BLOCK 512   // torch's kv_split_size
#define ROW_BLOCK 64    // query rows per task (KK_FLASH_ROWS)

static inline uint16_t to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7FFFu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

// Packing converts each row with kk_f32_to_bf16 (vectorised round to nearest even) into a small
// row buffer, then only moves 16- or 32-bit pieces into place.
#define PACK_ROW_MAX 1024  // head dims above this take the element-by-element path

void kk_pack_keys_bf16(const float *k, size_t keys, size_t d, size_t stride, uint16_t *packed) {
    size_t pairs = (d + 1) / 2, tiles = (keys + 15) / 16;
    if (d > PACK_ROW_MAX) {
        for (size_t t = 0; t < tiles; t++)
            for (size_t p = 0; p < pairs; p++)
                for (size_t j = 0; j < 16; j++)
                    for (size_t h = 0; h < 2; h++) {
                        size_t key = t * 16 + j, c = 2 * p + h;
                        packed[(t * pairs + p) * 32 + 2 * j + h] = (key < keys && c < d) ? to_bf16(k[key * stride + c]) : 0;
                    }
        return;
    }
    uint16_t row[PACK_ROW_MAX + 2];
    uint32_t *dst = (uint32_t *)packed;  // one bf16 pair of a key per 32 bits
    for (size_t key = 0; key < tiles * 16; key++) {
        size_t t = key / 16, j = key % 16;
        if (key < keys) {
            kk_f32_to_bf16(k + key * stride, row, d);
            row[d] = 0;  // pads an odd head dim
        } else {
            memset(row, 0, sizeof(uint16_t) * 2 * pairs);
        }
        for (size_t p = 0; p < pairs; p++) {
            uint32_t pair;
            memcpy(&pair, row + 2 * p, 4);
            dst[(t * pairs + p) * 16 + j] = pair;
        }
    }
}

void kk_pack_values_bf16(const float *v, size_t keys, size_t d, size_t stride, uint16_t *packed) {
    size_t pairs = (keys + 1) / 2, tiles = (d + 15) / 16, width = tiles * 16;
    if (d > PACK_ROW_MAX) {
        for (size_t p = 0; p < pairs; p++)
            for (size_t t = 0; t < tiles; t++)
                for (size_t j = 0; j < 16; j++)
                    for (size_t h = 0; h < 2; h++) {
                        size_t c = t * 16 + j, key = 2 * p + h;
                        packed[(p * tiles + t) * 32 + 2 * j + h] = (key < keys && c < d) ? to_bf16(v[key * stride + c]) : 0;
                    }
        return;
    }
    uint16_t a[PACK_ROW_MAX + 16], b[PACK_ROW_MAX + 16];
    for (size_t p = 0; p < pairs; p++) {
        memset(a, 0, width * 2);
        memset(b, 0, width * 2);
        kk_f32_to_bf16(v + 2 * p * stride, a, d);
        if (2 * p + 1 < keys) kk_f32_to_bf16(v + (2 * p + 1) * stride, b, d);
        uint16_t *dst = packed + p * width * 2;  // [tile][16 columns][2 keys], tiles back to back
        for (size_t c = 0; c < width; c++) {
            dst[2 * c] = a[c];
            dst[2 * c + 1] = b[c];
        }
    }
}

size_t kk_packed_keys_count(size_t keys, size_t d) { return (keys + 15) / 16 * 16 * ((d + 1) / 2 * 2); }
size_t kk_packed_values_count(size_t keys, size_t d) { return (keys + 1) / 2 * 2 * ((d + 15) / 16 * 16); }

#if defined(__x86_64__)
#include <immintrin.h>
#define KK_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

int kk_has_avx512_bf16(void) {
    static int state = -1;
    if (state < 0) {
        __builtin_cpu_init();
        state = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512bf16");
    }
    return state;
}

// exp256's arithmetic in 16 lanes (kk_exp_poly lane by lane).
KK_BF16 static inline __m512 exp512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3365447504f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f));
    x = _mm512_max_ps(x, lo);
    __m512 fx = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f));
    fx = _mm512_roundscale_ps(fx, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, z, x);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    __m512i n = _mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127));
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(n, 23)));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

static inline uint32_t pair_at(const uint16_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// S[4 rows × 16·T] = Q[4 rows] · K tiles t0..t0+T (T ≤ 4; q rows `dpad` apart), then
// S·scale + mask (rows `mld` apart, may be NULL; only the first `mrows` rows are real queries,
// the others padding that reads no mask), keys from `valid` on set to -inf, and each
// row's maximum folded into rowmax[r] — the scores leave the registers once, finished.
#define QK_TILE(T)                                                                                             \
    KK_BF16 static void qk_tile_##T(const uint16_t *q, size_t dpad, const uint16_t *kp, size_t pairs,         \
                                    float *s, size_t sld, __m512 scale, const float *mask, size_t mld,        \
                                    size_t mrows, size_t valid, float *rowmax) {                              \
        __m512 acc[4][T];                                                                                     \
        for (int r = 0; r < 4; r++)                                                                           \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();                                      \
        for (size_t p = 0; p < pairs; p++) {                                                                  \
            __m512bh kv[T];                                                                                   \
            for (int t = 0; t < T; t++) kv[t] = (__m512bh)_mm512_loadu_si512(kp + (t * pairs + p) * 32);     \
            for (int r = 0; r < 4; r++) {                                                                     \
                __m512bh qb = (__m512bh)_mm512_set1_epi32((int)pair_at(q + r * dpad + 2 * p));                \
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], qb, kv[t]);              \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < 4; r++) {                                                                         \
            __m512 vmax = _mm512_set1_ps(-INFINITY);                                                          \
            for (int t = 0; t < T; t++) {                                                                     \
                size_t left = valid > (size_t)t * 16 ? valid - (size_t)t * 16 : 0;                          \
                __mmask16 ok = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);               \
                __m512 x = _mm512_mul_ps(acc[r][t], scale);                                                   \
                if (mask && (size_t)r < mrows)                                                                \
                    x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(ok, mask + r * mld + t * 16));                 \
                x = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), ok, x);                                    \
                _mm512_storeu_ps(s + r * sld + t * 16, x);                                                    \
                vmax = _mm512_max_ps(vmax, x);                                                                \
            }                                                                                                 \
            float m = _mm512_reduce_max_ps(vmax);                                                             \
            if (m > rowmax[r]) rowmax[r] = m;                                                                 \
        }                                                                                                     \
    }
QK_TILE(4)
QK_TILE(1)

// O[4 rows × 16·T] += P[4 rows, pairs of keys] · V (packed pairs), column tiles c0..c0+T.
#define PV_TILE(T)                                                                                             \
    KK_BF16 static void pv_tile_##T(const uint16_t *p, size_t pld, const uint16_t *vp, size_t ctiles,         \
                                    size_t kpairs, float *o, size_t old) {                                    \
        __m512 acc[4][T];                                                                                     \
        for (int r = 0; r < 4; r++)                                                                           \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_loadu_ps(o + r * old + t * 16);                    \
        for (size_t j = 0; j < kpairs; j++) {                                                                 \
            __m512bh vv[T];                                                                                   \
            for (int t = 0; t < T; t++) vv[t] = (__m512bh)_mm512_loadu_si512(vp + (j * ctiles + t) * 32);    \
            for (int r = 0; r < 4; r++) {                                                                     \
                __m512bh pb = (__m512bh)_mm512_set1_epi32((int)pair_at(p + r * pld + 2 * j));                 \
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], pb, vv[t]);              \
            }                                                                                                 \
        }                                                                                                     \
        for (int r = 0; r < 4; r++)                                                                           \
            for (int t = 0; t < T; t++) _mm512_storeu_ps(o + r * old + t * 16, acc[r][t]);                    \
    }
PV_TILE(4)
PV_TILE(1)

// One block of at most ROW_BLOCK query rows, with its scratch.
KK_BF16 static void attend_rows(const float *q, size_t q_stride, size_t rows, const uint16_t *kpacked,
                                const uint16_t *vpacked, size_t keys, size_t d, float scale, const float *mask,
                                size_t mask_stride, float *out, size_t out_stride, uint16_t *qt, float *s,
                                uint16_t *pr, float *o) {
    const size_t pairs = (d + 1) / 2, dpad = 2 * pairs;            // Q rows, bf16, padded to pairs
    const size_t ctiles = (d + 15) / 16, opad = ctiles * 16;        // output columns, padded to tiles
    const size_t rpad = (rows + 3) / 4 * 4;
    const size_t sld = KEY_BLOCK, pld = KEY_BLOCK;
    float m[ROW_BLOCK], l[ROW_BLOCK];
    for (size_t r = 0; r < rpad; r++) {
        for (size_t c = 0; c < dpad; c++) qt[r * dpad + c] = (r < rows && c < d) ? to_bf16(q[r * q_stride + c]) : 0;
        m[r] = -INFINITY;
        l[r] = 0;
    }
    memset(o, 0, rpad * opad * 4);
    const __m512 vscale = _mm512_set1_ps(scale);
    for (size_t k0 = 0; k0 < keys; k0 += KEY_BLOCK) {
        const size_t n = keys - k0 < KEY_BLOCK ? keys - k0 : KEY_BLOCK;
        const size_t ktiles = (n + 15) / 16;
        const uint16_t *kp = kpacked + (k0 / 16) * pairs * 32;
        // finished scores of this block (scaled, masked) and each row's maximum so far
        float bmax[ROW_BLOCK + 4];
        for (size_t r = 0; r < rpad; r++) bmax[r] = m[r];
        for (size_t r0 = 0; r0 < rpad; r0 += 4) {
            const float *mrow = mask ? mask + r0 * mask_stride + k0 : NULL;
            size_t mrows = rows - r0 < 4 ? rows - r0 : 4;
            size_t t = 0;
            for (; t + 4 <= ktiles; t += 4)
                qk_tile_4(qt + r0 * dpad, dpad, kp + t * pairs * 32, pairs, s + r0 * sld + t * 16, sld, vscale,
                          mrow ? mrow + t * 16 : NULL, mask_stride, mrows, n - t * 16, bmax + r0);
            for (; t < ktiles; t++)
                qk_tile_1(qt + r0 * dpad, dpad, kp + t * pairs * 32, pairs, s + r0 * sld + t * 16, sld, vscale,
                          mrow ? mrow + t * 16 : NULL, mask_stride, mrows, n - t * 16, bmax + r0);
        }
        // online softmax, row by row
        for (size_t r = 0; r < rows; r++) {
            float *sr = s + r * sld;
            uint16_t *prow = pr + r * pld;
            float bm = bmax[r];
            if (bm == -INFINITY) {  // everything so far masked: these probabilities are 0
                memset(prow, 0, ((n + 1) / 2 * 2) * 2);
                continue;
            }
            const __m512 vm = _mm512_set1_ps(bm);
            __m512 vsum = _mm512_setzero_ps();
            for (size_t j = 0; j < n; j += 16) {
                __mmask16 valid = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
                __m512 e = _mm512_maskz_mov_ps(valid, exp512(_mm512_sub_ps(_mm512_loadu_ps(sr + j), vm)));
                vsum = _mm512_add_ps(vsum, e);
                // exp512 never makes a denormal or a NaN here (it clamps below at FLT_MIN's
                // exponent), where VCVTNEPS2BF16 is exactly round-to-nearest-even (as to_bf16)
                _mm256_storeu_si256((__m256i *)(prow + j), (__m256i)_mm512_cvtneps_pbh(e));
            }
            float c = expf(m[r] - bm);  // 0 for the first unmasked block
            l[r] = _mm512_reduce_add_ps(vsum) + c * l[r];
            m[r] = bm;
            if (k0 > 0 && c != 1) {
                __m512 vc = _mm512_set1_ps(c);
                for (size_t j = 0; j < opad; j += 16) _mm512_storeu_ps(o + r * opad + j, _mm512_mul_ps(_mm512_loadu_ps(o + r * opad + j), vc));
            }
        }
        for (size_t r = rows; r < rpad; r++) memset(pr + r * pld, 0, pld * 2);
        // P·V of this block
        const size_t kpairs = (n + 1) / 2;
        const uint16_t *vp = vpacked + (k0 / 2) * ctiles * 32;
        for (size_t r0 = 0; r0 < rpad; r0 += 4) {
            size_t t = 0;
            for (; t + 4 <= ctiles; t += 4) pv_tile_4(pr + r0 * pld, pld, vp + t * 32, ctiles, kpairs, o + r0 * opad + t * 16, opad);
            for (; t < ctiles; t++) pv_tile_1(pr + r0 * pld, pld, vp + t * 32, ctiles, kpairs, o + r0 * opad + t * 16, opad);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        float inv = 1 / (l[r] == 0 ? 1 : l[r]);
        for (size_t c = 0; c < d; c++) out[r * out_stride + c] = o[r * opad + c] * inv;
    }
}

KK_BF16 void kk_flash_attention_bf16(const float *q, size_t q_stride, size_t rows, const uint16_t *kpacked,
                                     const uint16_t *vpacked, size_t keys, size_t d, float scale, const float *mask,
                                     size_t mask_stride, float *out, size_t out_stride) {
    // Scratch per thread, kept between calls (a call's work can be as small as 64 queries × 256
    // keys, where fresh buffers' page faults would cost more than the arithmetic).
    static __thread unsigned char *scratch = NULL;
    static __thread size_t capacity = 0;
    const size_t dpad = (d + 1) / 2 * 2, opad = (d + 15) / 16 * 16;
    const size_t qBytes = (ROW_BLOCK * dpad * 2 + 63) / 64 * 64, sBytes = ROW_BLOCK * KEY_BLOCK * 4;
    const size_t pBytes = ROW_BLOCK * KEY_BLOCK * 2, oBytes = ROW_BLOCK * opad * 4;
    const size_t need = qBytes + sBytes + pBytes + oBytes;
    if (capacity < need) {
        free(scratch);
        scratch = aligned_alloc(64, need);
        capacity = scratch ? need : 0;
        if (!scratch) abort();
    }
    uint16_t *qt = (uint16_t *)scratch;
    float *s = (float *)(scratch + qBytes);
    uint16_t *pr = (uint16_t *)(scratch + qBytes + sBytes);
    float *o = (float *)(scratch + qBytes + sBytes + pBytes);
    for (size_t r0 = 0; r0 < rows; r0 += ROW_BLOCK) {
        size_t n = rows - r0 < ROW_BLOCK ? rows - r0 : ROW_BLOCK;
        attend_rows(q + r0 * q_stride, q_stride, n, kpacked, vpacked, keys, d, scale,
                    mask ? mask + r0 * mask_stride : NULL, mask_stride, out + r0 * out_stride, out_stride, qt, s, pr, o);
    }
}

#else
int kk_has_avx512_bf16(void) { return 0; }
void kk_flash_attention_bf16(const float *q, size_t q_stride, size_t rows, const uint16_t *kpacked,
                             const uint16_t *vpacked, size_t keys, size_t d, float scale, const float *mask,
                             size_t mask_stride, float *out, size_t out_stride) {
    (void)q; (void)q_stride; (void)rows; (void)kpacked; (void)vpacked; (void)keys; (void)d; (void)scale;
    (void)mask; (void)mask_stride; (void)out; (void)out_stride;
    abort();  // callers check kk_has_avx512_bf16() first
}
#endif
