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
                             float *scratch) {
    const size_t lh = up ? 2 * H : H, lw = up ? 2 * W : W;
    const size_t pw = 4 * tiles_x + 2;           // padded width covered by the tiles
    const size_t tb = (ty1 - ty0) * tiles_x;     // tiles in this block
    float *rows = scratch;                       // 6 × pw
    float *t = rows + 6 * pw;                    // 6 × pw   (Bᵀ applied along y)
    float *p = t + 6 * pw;                       // 6 × tiles_x (one phase per tap)
    float *zero = p + 6 * tiles_x;               // pw zeros
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
            const size_t tbase = (ty - ty0) * tiles_x;
            for (int i = 0; i < 6; i++) {
                const float *ti = t + i * pw;
                for (int k = 0; k < 6; k++) {
                    float *pk = p + k * tiles_x;
                    for (size_t tx = 0; tx < tiles_x; tx++) pk[tx] = ti[4 * tx + k];
                }
                float *out[6];
                for (int j = 0; j < 6; j++) out[j] = V + ((size_t)(i * 6 + j) * cin + c) * tb + tbase;
                wg_bt(p, p + tiles_x, p + 2 * tiles_x, p + 3 * tiles_x, p + 4 * tiles_x,
                      p + 5 * tiles_x, out[0], out[1], out[2], out[3], out[4], out[5], tiles_x);
            }
        }
    }
}

#if WG_HAVE_AVX2
WG_AVX2 static void wg_input_avx2(const float *x, size_t H, size_t W, int up, size_t tiles_x,
                                  size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin,
                                  float *V, float *scratch) {
    wg_input_body(x, H, W, up, tiles_x, ty0, ty1, c0, c1, cin, V, scratch);
}
#endif

static void wg_input_plain(const float *x, size_t H, size_t W, int up, size_t tiles_x,
                           size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V,
                           float *scratch) {
    wg_input_body(x, H, W, up, tiles_x, ty0, ty1, c0, c1, cin, V, scratch);
}

void kk_winograd43_input(const float *x, size_t H, size_t W, int upsample2x, size_t tiles_x,
                         size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V) {
    const size_t pw = 4 * tiles_x + 2;
    float *scratch = (float *)malloc((13 * pw + 6 * tiles_x) * sizeof(float));
    if (!scratch) abort();
#if WG_HAVE_AVX2
    if (kk_has_avx2()) wg_input_avx2(x, H, W, upsample2x, tiles_x, ty0, ty1, c0, c1, cin, V, scratch);
    else
#endif
        wg_input_plain(x, H, W, upsample2x, tiles_x, ty0, ty1, c0, c1, cin, V, scratch);
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

WG_INLINE void wg_output_body(const float *M, size_t cout, size_t tiles_x, size_t ty0, size_t ty1,
                              const float *bias, size_t co0, size_t co1, float *y, size_t oh,
                              size_t ow, float *scratch) {
    const size_t tb = (ty1 - ty0) * tiles_x;
    float *s = scratch;                    // 6 × 4 × tiles_x  (Aᵀ along x)
    float *o = s + 24 * tiles_x;           // 4 × tiles_x      (Aᵀ along y)
    for (size_t co = co0; co < co1; co++) {
        const float b = bias ? bias[co] : 0.0f;
        float *yc = y + co * oh * ow;
        for (size_t ty = ty0; ty < ty1; ty++) {
            const size_t tbase = (ty - ty0) * tiles_x;
            for (int i = 0; i < 6; i++) {
                const float *m[6];
                for (int j = 0; j < 6; j++) m[j] = M + ((size_t)(i * 6 + j) * cout + co) * tb + tbase;
                float *si = s + (size_t)i * 4 * tiles_x;
                wg_at(m[0], m[1], m[2], m[3], m[4], m[5], si, si + tiles_x, si + 2 * tiles_x,
                      si + 3 * tiles_x, tiles_x);
            }
            for (int q = 0; q < 4; q++) {
                // Column q of every tile: Aᵀ over the six rows i.
                const float *sq[6];
                for (int i = 0; i < 6; i++) sq[i] = s + ((size_t)i * 4 + q) * tiles_x;
                wg_at(sq[0], sq[1], sq[2], sq[3], sq[4], sq[5], o, o + tiles_x, o + 2 * tiles_x,
                      o + 3 * tiles_x, tiles_x);
                for (int pr = 0; pr < 4; pr++) {
                    const size_t oy = 4 * ty + pr;
                    if (oy >= oh) break;
                    float *row = yc + oy * ow;
                    const float *op = o + (size_t)pr * tiles_x;
                    size_t tx = 0;
                    for (; tx < tiles_x && 4 * tx + q < ow; tx++) row[4 * tx + q] = op[tx] + b;
                }
            }
        }
    }
}

#if WG_HAVE_AVX2
WG_AVX2 static void wg_output_avx2(const float *M, size_t cout, size_t tiles_x, size_t ty0, size_t ty1,
                                   const float *bias, size_t co0, size_t co1, float *y, size_t oh,
                                   size_t ow, float *scratch) {
    wg_output_body(M, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
}
#endif

static void wg_output_plain(const float *M, size_t cout, size_t tiles_x, size_t ty0, size_t ty1,
                            const float *bias, size_t co0, size_t co1, float *y, size_t oh,
                            size_t ow, float *scratch) {
    wg_output_body(M, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
}

void kk_winograd43_output(const float *M, size_t cout, size_t tiles_x, size_t ty0, size_t ty1,
                          const float *bias, size_t co0, size_t co1, float *y, size_t oh, size_t ow) {
    float *scratch = (float *)malloc(28 * tiles_x * sizeof(float));
    if (!scratch) abort();
#if WG_HAVE_AVX2
    if (kk_has_avx2()) wg_output_avx2(M, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
    else
#endif
        wg_output_plain(M, cout, tiles_x, ty0, ty1, bias, co0, co1, y, oh, ow, scratch);
    free(scratch);
}

void kk_winograd43_weights(const float *w, size_t cout, size_t cin, size_t co0, size_t co1, float *U) {
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    for (size_t co = co0; co < co1; co++) {
        for (size_t ci = 0; ci < cin; ci++) {
            const float *g = w + (co * cin + ci) * 9;
            double t[6][3];   // G g
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < 3; k++)
                    t[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double u = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    U[((size_t)(i * 6 + j) * cout + co) * cin + ci] = (float)u;
                }
        }
    }
}
