import KolorsEngine

/// Mirrors diffusers `IPAdapterPlusImageProjectionBlock` (one Perceiver layer of the
/// IP-Adapter-Plus resampler): latents attend to [LN0(image features); LN1(latents)], then a
/// LayerNorm + exact-GELU feed-forward without biases; both with residuals.
public final class IPAdapterPlusImageProjectionBlock: @unchecked Sendable {
    let ln0: LayerNorm
    let ln1: LayerNorm
    let attn: Attention
    let ffNorm: LayerNorm
    let ffProj: Linear
    let ffOut: Linear

    /// `w` is in diffusers names (`ln0`, `ln1`, `attn.to_q` …, `ff.0`, `ff.1.net.0.proj`, `ff.1.net.2`).
    public init(_ w: WeightScope, dim: Int, heads: Int, headDim: Int, ffInner: Int, backend: ComputeBackend) throws {
        ln0 = try LayerNorm(w.scope("ln0"), dim: dim, eps: 1e-5)
        ln1 = try LayerNorm(w.scope("ln1"), dim: dim, eps: 1e-5)
        attn = try Attention(w.scope("attn"), queryDim: dim, heads: heads, headDim: headDim, outBias: false, backend: backend)
        ffNorm = try LayerNorm(w.scope("ff.0"), dim: dim, eps: 1e-5)
        ffProj = try Linear(w.scope("ff.1.net.0.proj"), in: dim, out: ffInner, bias: false, backend: backend)
        ffOut = try Linear(w.scope("ff.1.net.2"), in: ffInner, out: dim, bias: false, backend: backend)
    }

    /// x: projected image features [B, L, dim]; latents [B, Q, dim] → new latents [B, Q, dim].
    public func callAsFunction(_ x: Tensor, latents: Tensor) -> Tensor {
        let features = ln0(x)
        let normed = ln1(latents)
        let kv = concat([features, normed], dim: 1)
        let out = attn(normed, context: kv)
        addInPlace(out, latents)
        addInPlace(out, ffOut(geluErf(ffProj(ffNorm(out)), inPlace: true)))
        return out
    }
}
