// The engine's vectorised exp (exp256 in kolors_kernels.c, exp512 in flash_attention.c) as one
// scalar function: the same clamps, the same fused multiply-adds in the same order, the same
// power-of-two scaling, so a value gets bit for bit the same exponential in an AVX2 lane, an
// AVX-512 lane or a scalar tail. bf16 attention relies on it: its probabilities are rounded to
// bf16, and the oneDNN path and the emulation must round the very same float32 values.
#ifndef KK_EXP_POLY_H
#define KK_EXP_POLY_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float kk_exp_poly(float x) {
    if (x < -87.3365447504f) return 0.0f;  // also -inf
    x = fminf(x, 88.3762626647949f);
    float fx = floorf(fmaf(x, 1.44269504088896341f, 0.5f));
    x = fmaf(-fx, 0.693359375f, x);
    x = fmaf(-fx, -2.12194440e-4f, x);
    float z = x * x;
    float y = 1.9875691500E-4f;
    y = fmaf(y, x, 1.3981999507E-3f);
    y = fmaf(y, x, 8.3334519073E-3f);
    y = fmaf(y, x, 4.1665795894E-2f);
    y = fmaf(y, x, 1.6666665459E-1f);
    y = fmaf(y, x, 5.0000001201E-1f);
    y = fmaf(y, z, x);
    y = y + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float p;
    memcpy(&p, &bits, 4);
    return y * p;
}

#endif
