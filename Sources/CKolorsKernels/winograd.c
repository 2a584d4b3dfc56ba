// Winograd F(4×4, 3×3) convolution transforms (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016), for 3×3 kernels with stride 1 and padding 1.
//
// A 6×6 input tile d gives a 4×4 output tile  Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,  so a
// convolution becomes 36 independent matrix products  M[ξ] = U[ξ] · V[ξ]  (ξ = one of the 6×6
// transform positions), [Cout × Cin] · [Cin × tiles]: 36 multiplies per 16 outputs instead
// of 144. The transforms below are written as whole-row vector operations (rows of the image,
// then rows of tiles), which the compiler vectorises; the products go to BLAS.
//
//   Bᵀ = [4  0 -5  0  1  0]     G = [ 1/4     0     0]     Aᵀ = [1  1  1  1  1  0]
//        [0 -4 -4  1  1  0]         [-1/6 -1/6  -1/6]          [0  1 -1  2 -2  0]
//        [0  4 -4 -1  1  0]         [-1/6  1/6  -1/6]          [0  1  1  4  4  0]
//        [0 -2 -1  2  1  0]         [1/24 1/12   1/6]          [0  1 -1  8 -8  1]
//        [0  2 -1 -2  1  0]         [1/24 -1/12  1/6]
//        [0  4  0 -5  0  1]         [  0     0     1]
#include "kolors_kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define WG_AVX2 __attribute__((target("avx2,fma")))
#define WG_HAVE_AVX2 1
#else
#define WG_HAVE_AVX2 0
#endif

#define WG_INLINE static inline __attribute__((always_inline))

// v = Bᵀ d for six vectors d0…d5 of length n.
WG_INLINE void wg_bt(const float *d0, const float *d1, const float *d2, const float *d3,
                     const float *d4, const float *d5, float *v0, float *v1, float *v2,
                     float *v3, float *v4, float *v5, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float a0 = d0[i], a1 = d1[i], a2 = d2[i], a3 = d3[i], a4 = d4[i], a5 = d5[i];
        v0[i] = 4.0f * a0 - 5.0f * a2 + a4;
        v1[i] = -4.0f * (a1 + a2) + a3 + a4;
        v2[i] = 4.0f * (a1 - a2) - a3 + a4;
        v3[i] = 2.0f * (a3 - a1) - a2 + a4;
        v4[i] = 2.0f * (a1 - a3) - a2 + a4;
        v5[i] = 4.0f * a1 - 5.0f * a3 + a5;
    }
}

// One row of a (possibly 2×-nearest-upsampled) image, zero padded: out[xx] = img[xx - 1] for
// xx in [0, pw), zero outside [0, lw).
WG_INLINE void wg_padded_row(const float *src, size_t lw, int up, size_t pw, float *out) {
    out[0] = 0.0f;
    size_t n = pw - 1 < lw ? pw - 1 : lw;
    if (up) {
        for (size_t x = 0; x < n; x++) out[x + 1] = src[x >> 1];
    } else {
        memcpy(out + 1, src, n * sizeof(float));
    }
    for (size_t xx = n + 1; xx < pw; xx++) out[xx] = 0.0f;
}

WG_INLINE void wg_input_body(const float *x, size_t H, size_t W, int up, size_t tiles_x,
                             size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V,
                             size_t ld, size_t col0, float *scratch) {
    const size_t lh = up ? 2 * H : H, lw = up ? 2 * W : W;
    const size_t pw = 4 * tiles_x + 2;           // padded width covered by the tiles
    float *rows = scratch;                       // 6 × pw
    float *t = rows + 6 * pw;                    // 6 × pw   (Bᵀ applied along y)
    float *p = t + 6 * pw;                       // 4 × (tiles_x + 1): taps 0-3 of each tile
    float *zero = p + 4 * (tiles_x + 1);         // pw zeros
    memset(zero, 0, pw * sizeof(float));
    for (size_t c = c0; c < c1; c++) {
        const float *xc = x + c * H * W;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const float *r[6];
            for (int k = 0; k < 6; k++) {
                long y = (long)(4 * ty + k) - 1;
                if (y < 0 || y >= (long)lh) { r[k] = zero; continue; }
                size_t sy = up ? (size_t)y >> 1 : (size_t)y;
                wg_padded_row(xc + sy * W, lw, up, pw, rows + k * pw);
                r[k] = rows + k * pw;
            }
            wg_bt(r[0], r[1], r[2], r[3], r[4], r[5], t, t + pw, t + 2 * pw, t + 3 * pw,
                  t + 4 * pw, t + 5 * pw, pw);
            const size_t tbase = col0 + (ty - ty0) * tiles_x;
            for (int i = 0; i < 6; i++) {
                // Tap k of tile tx is ti[4tx + k]: taps 0-3 by a 4-way deinterleave (one
                // interleaved group, which the compiler vectorises with shuffles), taps 4 and 5
                // are taps 0 and 1 of the next tile.
                const float *ti = t + i * pw;
                float *p0 = p, *p1 = p + (tiles_x + 1), *p2 = p + 2 * (tiles_x + 1), *p3 = p + 3 * (tiles_x + 1);
                for (size_t tx = 0; tx < tiles_x; tx++) {
                    p0[tx] = ti[4 * tx];
                    p1[tx] = ti[4 * tx + 1];
                    p2[tx] = ti[4 * tx + 2];
                    p3[tx] = ti[4 * tx + 3];
                }
                p0[tiles_x] = ti[4 * tiles_x];
                p1[tiles_x] = ti[4 * tiles_x + 1];
                float *out[6];
                for (int j = 0; j < 6; j++) out[j] = V + ((size_t)(i * 6 + j) * cin + c) * ld + tbase;
                wg_bt(p0, p1, p2, p3, p0 + 1, p1 + 1, out[0], out[1], out[2], out[3], out[4], out[5], tiles_x);
            }
        }
    }
}

#if WG_HAVE_AVX2
WG_AVX2 static void wg_input_avx2(const float *x, size_t H, size_t W, int up, size_t tiles_x,
                                  size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin,
                                  float *V, size_t ld, size_t col0, float *scratch) {
    wg_input_body(x, H, W, up, tiles_x, ty0, ty1, c0, c1, cin, V, ld, col0, scratch);
}
#endif

static void wg_input_plain(const float *x, size_t H, size_t W, int up, size_t tiles_x,
                           size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V,
                           size_t ld, size_t col0, float *scratch) {
    wg_input_body(x, H, W, up, tiles_x, ty0, ty1, c0, c1, cin, V, ld, col0, scratch);
}

void kk_winograd43_input(const float *x, size_t H, size_t W, int upsample2x, size_t tiles_x,
                         size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V,
                         size_t ld, size_t col0) {
    const size_t pw = 4 * tiles_x + 2;
    float *scratch = (float *)malloc((13 * pw + 4 * (tiles_x + 1)) * sizeof(float));
    if (!scratch) abort();
#if WG_HAVE_AVX2
    if (kk_has_avx2()) wg_input_avx2(x, H, W, upsample2x, tiles_x, ty0, ty1, c0, c1, cin, V, ld, col0, scratch);
    else
#endif
        wg_input_plain(x, H, W, upsample2x, tiles_x, ty0, ty1, c0, c1, cin, V, ld, col0, scratch);
    free(scratch);
}

// s = Aᵀ m for six vectors m0…m5 of length n, giving four.
WG_INLINE void wg_at(const float *m0, const float *m1, const float *m2, const float *m3,
                     const float *m4, const float *m5, float *s0, float *s1, float *s2, float *s3,
                     size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float a1 = m1[i], a2 = m2[i], a3 = m3[i], a4 = m4[i];
        const float p12 = a1 + a2, m12 = a1 - a2, p34 = a3 + a4, m34 = a3 - a4;
        s0[i] = m0[i] + p12 + p34;
        s1[i] = m12 + 2.0f * m34;
        s2[i] = p12 + 4.0f * p34;
        s3[i] = m12 + 8.0f * m34 + m5[i];
    }
}

WG_INLINE void wg_output_body(const float *M, size_t ld, size_t col0, size_t cout, size_t tiles_x,
                              size_t ty0, size_t ty1, const float *bias, size_t co0, size_t co1,
                              float *y, size_t oh, size_t ow, float *scratch) {
    float *s = scratch;                    // 6 × 4 × tiles_x  (Aᵀ along x)
    float *o = s + 24 * tiles_x;           // 4 × 4 × tiles_x  (Aᵀ along y), [q][row]
    for (size_t co = co0; co < co1; co++) {
        const float b = bias ? bias[co] : 0.0f;
        float *yc = y + co * oh * ow;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const size_t tbase = col0 + (ty - ty0) * tiles_x;
            for (int i = 0; i < 6; i++) {
                const float *m[6];
                for (int j = 0; j < 6; j++) m[j] = M + ((size_t)(i * 6 + j) * cout + co) * ld + tbase;
                float *si = s + (size_t)i * 4 * tiles_x;
                wg_at(m[0], m[1], m[2], m[3], m[4], m[5], si, si + tiles_x, si + 2 * tiles_x,
                      si + 3 * tiles_x, tiles_x);
            }
            // Aᵀ over the six rows i, for each column q: o[q][pr] = output row pr, column q.
            for (int q = 0; q < 4; q++) {
                const float *sq[6];
                for (int i = 0; i < 6; i++) sq[i] = s + ((size_t)i * 4 + q) * tiles_x;
                float *oq = o + (size_t)q * 4 * tiles_x;
                wg_at(sq[0], sq[1], sq[2], sq[3], sq[4], sq[5], oq, oq + tiles_x, oq + 2 * tiles_x,
                      oq + 3 * tiles_x, tiles_x);
            }
            const size_t full = ow / 4 < tiles_x ? ow / 4 : tiles_x;   // tiles wholly inside
            for (int pr = 0; pr < 4; pr++) {
                const size_t oy = 4 * ty + pr;
                if (oy >= oh) break;
                float *row = yc + oy * ow;
                const float *c0 = o + (size_t)pr * tiles_x, *c1 = c0 + 4 * tiles_x;
                const float *c2 = c1 + 4 * tiles_x, *c3 = c2 + 4 * tiles_x;
                // One interleaved store group (vectorised with shuffles).
                for (size_t tx = 0; tx < full; tx++) {
                    row[4 * tx] = c0[tx] + b;
                    row[4 * tx + 1] = c1[tx] + b;
                    row[4 * tx + 2] = c2[tx] + b;
                    row[4 * tx + 3] = c3[tx] + b;
                }
                for (size_t ox = 4 * full; ox < ow; ox++) {
                    const size_t tx = ox / 4, q = ox % 4;
                    row[ox] = o[(q * 4 + (size_t)pr) * tiles_x + tx] + b;
                }
            }
        }
    }
}

#if WG_HAVE_AVX2
WG_AVX2 static void wg_output_avx2(const float *M, size_t ld, size_t col0, size_t cout, size_t tiles_x,
                                   size_t ty0, size_t ty1, const float *bias, size_t co0, size_t co1,
                                   float *y, size_t oh, size_t ow, float *scratch) {
    wg_output_body(M, ld, col0, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
}
#endif

static void wg_output_plain(const float *M, size_t ld, size_t col0, size_t cout, size_t tiles_x,
                            size_t ty0, size_t ty1, const float *bias, size_t co0, size_t co1,
                            float *y, size_t oh, size_t ow, float *scratch) {
    wg_output_body(M, ld, col0, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
}

void kk_winograd43_output(const float *M, size_t ld, size_t col0, size_t cout, size_t tiles_x,
                          size_t ty0, size_t ty1, const float *bias, size_t co0, size_t co1,
                          float *y, size_t oh, size_t ow) {
    float *scratch = (float *)malloc(40 * tiles_x * sizeof(float));
    if (!scratch) abort();
#if WG_HAVE_AVX2
    if (kk_has_avx2()) wg_output_avx2(M, ld, col0, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
    else
#endif
        wg_output_plain(M, ld, col0, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
    free(scratch);
}

// U = G g Gᵀ for input channels [ci0, ci0 + 8) of one output channel at a time, the eight
// kernels side by side so every operation is an 8-lane vector operation.
#define WG_LANES 8
WG_INLINE void wg_weights_body(const float *w, size_t cout, size_t cin, size_t co0, size_t co1, float *U) {
    static const float G[6][3] = {
        {1.0f / 4, 0, 0},
        {-1.0f / 6, -1.0f / 6, -1.0f / 6},
        {-1.0f / 6, 1.0f / 6, -1.0f / 6},
        {1.0f / 24, 1.0f / 12, 1.0f / 6},
        {1.0f / 24, -1.0f / 12, 1.0f / 6},
        {0, 0, 1},
    };
    float g[9][WG_LANES], t[6][3][WG_LANES];
    for (size_t co = co0; co < co1; co++) {
        for (size_t ci0 = 0; ci0 < cin; ci0 += WG_LANES) {
            const size_t n = cin - ci0 < WG_LANES ? cin - ci0 : WG_LANES;
            for (size_t l = 0; l < WG_LANES; l++)
                for (int e = 0; e < 9; e++) g[e][l] = l < n ? w[(co * cin + ci0 + l) * 9 + e] : 0.0f;
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < 3; k++)
                    for (size_t l = 0; l < WG_LANES; l++)
                        t[i][k][l] = G[i][0] * g[k][l] + G[i][1] * g[3 + k][l] + G[i][2] * g[6 + k][l];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    float u[WG_LANES];
                    for (size_t l = 0; l < WG_LANES; l++)
                        u[l] = t[i][0][l] * G[j][0] + t[i][1][l] * G[j][1] + t[i][2][l] * G[j][2];
                    memcpy(U + ((size_t)(i * 6 + j) * cout + co) * cin + ci0, u, n * sizeof(float));
                }
        }
    }
}

#if WG_HAVE_AVX2
WG_AVX2 static void wg_weights_avx2(const float *w, size_t cout, size_t cin, size_t co0, size_t co1, float *U) {
    wg_weights_body(w, cout, cin, co0, co1, U);
}
#endif

void kk_winograd43_weights(const float *w, size_t cout, size_t cin, size_t co0, size_t co1, float *U) {
#if WG_HAVE_AVX2
    if (kk_has_avx2()) { wg_weights_avx2(w, cout, cin, co0, co1, U); return; }
#endif
    wg_weights_body(w, cout, cin, co0, co1, U);
}
