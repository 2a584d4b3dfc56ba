// Hot element-wise helpers for the Kolors engine, written in C so that they can use
// AVX2/FMA/F16C with runtime dispatch (Swift cannot target CPU features per function).
// Every function works on plain contiguous float buffers; callers split work across
// threads. All functions have a portable scalar fallback.
#ifndef KOLORS_KERNELS_H
#define KOLORS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the AVX2+FMA+F16C paths are in use on this CPU.
int kk_has_avx2(void);
/// Forces the scalar paths (1) or re-enables dispatch (0); used by tests.
void kk_force_scalar(int on);

// ---- dtype conversion -------------------------------------------------------------------
void kk_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void kk_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
/// Round to nearest even, like torch's `.half()`.
void kk_f32_to_f16(const float *src, uint16_t *dst, size_t n);
/// Round to nearest even, like torch's `.bfloat16()`.
void kk_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
/// fp16 → bf16 (exact to float32, then round to nearest even), in one pass.
void kk_f16_to_bf16(const uint16_t *src, uint16_t *dst, size_t n);
/// float32 values rounded to the nearest bfloat16 (ties to even), kept as float32: exactly
/// kk_bf16_to_f32(kk_f32_to_bf16(x)). src and dst may be the same buffer.
void kk_round_bf16(const float *src, float *dst, size_t n);

// ---- vectorised math (out may equal in) ---------------------------------------------------
void kk_exp(const float *in, float *out, size_t n);
/// x * sigmoid(x)
void kk_silu(const float *in, float *out, size_t n);
/// Exact GELU: 0.5 x (1 + erf(x / sqrt 2))
void kk_gelu_erf(const float *in, float *out, size_t n);
/// GELU with the tanh approximation.
void kk_gelu_tanh(const float *in, float *out, size_t n);
/// CLIP's quick GELU: x * sigmoid(1.702 x)
void kk_quick_gelu(const float *in, float *out, size_t n);
/// erf(x), for tests.
void kk_erf(const float *in, float *out, size_t n);

/// GEGLU on rows of width 2*inner: out[r, j] = in[r, j] * gelu_erf(in[r, inner + j]).
void kk_geglu(const float *in, float *out, size_t rows, size_t inner);
/// SwiGLU on rows of width 2*inner: out[r, j] = silu(in[r, j]) * in[r, inner + j].
void kk_swiglu(const float *in, float *out, size_t rows, size_t inner);

/// In-place numerically stable softmax over each row of `cols` values (rows `stride` apart).
void kk_softmax_rows(float *x, size_t rows, size_t cols, size_t stride);
/// The softmax of torch's CPU flash attention in bf16 (scaled_dot_product_attention), for each
/// row of `cols` scores (rows `stride` apart) taken in blocks of `block` keys: with m the running
/// maximum up to and including a block, the block's scores become exp(s - m) rounded to bf16
/// (unnormalised; also written as bf16 bits to `bits` when not NULL), `rescale[row·nblocks + b]`
/// receives exp(m_before - m) — the factor by which the output accumulated over the earlier blocks
/// is multiplied before block b's P·V is added (1 where the maximum did not move) — and `sums[row]`
/// the float32 sum of the unrounded exponentials, built the same way (1 for a fully masked row).
/// The attention output is then (Σ_b rescaled P_b·V_b) / sum.
void kk_softmax_bf16_blocks(float *x, size_t rows, size_t cols, size_t stride, size_t block,
                            uint16_t *bits, size_t bits_stride, float *rescale, float *sums);

/// The scalar twin of the vectorised exp (kk_exp's lanes), bit for bit; bf16 attention's
/// probabilities rely on every path computing the same exponentials.
float kk_exp_scalar(float x);
/// Whether the CPU has AVX-512 with BF16 dot products (what kk_flash_attention_bf16 needs).
int kk_has_avx512_bf16(void);
/// K rows (`keys` × `d` floats, rows `stride` apart) rounded to bf16 and packed for
/// kk_flash_attention_bf16: kk_packed_keys_count(keys, d) values.
void kk_pack_keys_bf16(const float *k, size_t keys, size_t d, size_t stride, uint16_t *packed);
size_t kk_packed_keys_count(size_t keys, size_t d);
/// V rows likewise: kk_packed_values_count(keys, d) values.
void kk_pack_values_bf16(const float *v, size_t keys, size_t d, size_t stride, uint16_t *packed);
size_t kk_packed_values_count(size_t keys, size_t d);
/// Attention of `rows` queries of one head (`d` floats each, rows `q_stride` apart; rounded to
/// bf16 here) over `keys` packed keys and values, with torch's bf16 rounding points (as the
/// emulation: scores × scale + mask, blocks of 512 keys, unnormalised bf16 probabilities, online
/// rescale, division by the float32 sum at the end): `out` rows `out_stride` apart; `mask` (may be
/// NULL) rows `mask_stride` apart, starting at the first query's row. Needs kk_has_avx512_bf16().
void kk_flash_attention_bf16(const float *q, size_t q_stride, size_t rows, const uint16_t *kpacked,
                             const uint16_t *vpacked, size_t keys, size_t d, float scale, const float *mask,
                             size_t mask_stride, float *out, size_t out_stride);

// ---- normalisation ------------------------------------------------------------------------
/// LayerNorm over the last dimension; gamma/beta may be NULL.
void kk_layernorm_rows(const float *in, float *out, size_t rows, size_t cols,
                       const float *gamma, const float *beta, float eps);
/// RMSNorm over the last dimension (ChatGLM/T5 style); gamma may be NULL.
void kk_rmsnorm_rows(const float *in, float *out, size_t rows, size_t cols,
                     const float *gamma, float eps);
/// Mean and (biased) variance of n values, accumulated in double.
void kk_mean_var(const float *x, size_t n, double *mean, double *var);
/// y = (x - mean) * rstd * gamma[c] + beta[c] over `channels` blocks of `hw` values,
/// optionally followed by SiLU.  gamma/beta may be NULL.
void kk_norm_apply_channels(const float *in, float *out, size_t channels, size_t hw,
                            float mean, float rstd, const float *gamma, const float *beta,
                            int silu);

// ---- element-wise arithmetic -------------------------------------------------------------
/// out = a + b
void kk_add(const float *a, const float *b, float *out, size_t n);
/// out = a * b
void kk_mul(const float *a, const float *b, float *out, size_t n);
/// out = a * s
void kk_scale(const float *a, float s, float *out, size_t n);
/// y += a * x
void kk_axpy(float a, const float *x, float *y, size_t n);
/// out[r, c] = in[r, c] + bias[c]
void kk_add_bias_rows(const float *in, const float *bias, float *out, size_t rows, size_t cols);

// ---- int8 weights -------------------------------------------------------------------------
/// Per-row symmetric int8 quantization (ChatGLM's quantize(8)): scale = max|w| / 127,
/// q = round-half-even(w / scale) clamped to [-127, 127]; an all-zero row gets scale 0, q 0.
void kk_quantize_row_int8(const float *w, int8_t *q, size_t n, float *scale);
/// dst = (float)q * scale
void kk_dequantize_int8(const int8_t *q, float scale, float *dst, size_t n);
/// 7-bit activation quantization for u8·s8 GEMMs without VNNI: scale = max|x| / 63,
/// u = round-half-even(x / scale) + 64 ∈ [1, 127]; an all-zero row gets scale 0, u 64.
void kk_quantize_row_u7(const float *x, uint8_t *u, size_t n, float *scale);
/// y[m, n] = sa[m] · sw[n] · (acc[m, n] − 64 · wsum[n]) (+ bias[n]) for an M×N block.
void kk_dequantize_gemm_u7(const int32_t *acc, const float *sa, const float *sw, const int32_t *wsum,
                           const float *bias, float *y, size_t m, size_t n);

// ---- image layout helpers ----------------------------------------------------------------
/// im2col for output rows [oy0, oy1) of one image: x [C, H, W] -> cols [C*kh*kw, (oy1-oy0)*ow]
/// with zero padding (bottom/right padding is implied by oh/ow, so the VAE encoder's
/// right/bottom-only padding is pad_top = pad_left = 0). Channels [c0, c1) only, so callers
/// can split the work across threads; rows of cols for other channels are left untouched.
void kk_im2col(const float *x, size_t C, size_t H, size_t W, size_t kh, size_t kw,
               size_t stride_h, size_t stride_w, size_t pad_top, size_t pad_left,
               size_t oh, size_t ow, size_t oy0, size_t oy1, size_t c0, size_t c1, float *cols);
/// Nearest-neighbour resize of [C, H, W] to [C, oh, ow] with torch's rule
/// src = floor(dst * in / out).
void kk_upsample_nearest(const float *x, size_t C, size_t H, size_t W,
                         size_t oh, size_t ow, float *out);
// ---- Winograd F(4x4, 3x3) (3x3 kernels, stride 1, padding 1; see winograd.c) ----------
/// Input transform of tile rows [ty0, ty1) of one image x [cin, H, W] (read as its 2x nearest
/// upsampling when upsample2x, so Upsample2D's conv never materialises the big tensor), for
/// channels [c0, c1): V [36][cin][ld], this block's (ty1-ty0)*tiles_x tiles in columns from
/// col0 (several images can share one V), tiles_x = ceil(width/4).
void kk_winograd43_input(const float *x, size_t H, size_t W, int upsample2x, size_t tiles_x,
                         size_t ty0, size_t ty1, size_t c0, size_t c1, size_t cin, float *V,
                         size_t ld, size_t col0);
/// Output transform of M [36][cout][ld] (tile rows [ty0, ty1) in columns from col0) for output
/// channels [co0, co1), plus bias (may be NULL), written into one image y [cout, oh, ow]
/// (tiles cropped at the edges).
void kk_winograd43_output(const float *M, size_t ld, size_t col0, size_t cout, size_t tiles_x,
                          size_t ty0, size_t ty1, const float *bias, size_t co0, size_t co1,
                          float *y, size_t oh, size_t ow);
/// Kernel transform U [36][cout][cin] = G g Gᵀ of w [cout][cin][3][3], rows [co0, co1).
void kk_winograd43_weights(const float *w, size_t cout, size_t cin, size_t co0, size_t co1, float *U);
/// Transpose a [rows, cols] matrix into [cols, rows].
void kk_transpose(const float *in, float *out, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
#endif
