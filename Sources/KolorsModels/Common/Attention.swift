import KolorsEngine

/// Mirrors diffusers `Attention` with `AttnProcessor2_0` (or `IPAdapterAttnProcessor2_0` when
/// called with image tokens and projections): q/k/v projections, multi-head scaled-dot-product
/// attention (scale 1/√head_dim), output projection `to_out.0`.
/// For the VAE it also owns a GroupNorm and the residual connection.
public final class Attention: @unchecked Sendable {
    public let toQ: Linear
    public let toK: Linear
    public let toV: Linear
    public let toOut: Linear
    public let heads: Int
    public let headDim: Int
    let groupNorm: GroupNorm?
    let backend: ComputeBackend
    /// This layer's position among the UNet's cross-attention layers (diffusers'
    /// `attn_processors` order of attn2), which picks its IP-Adapter projections; set by the UNet.
    public internal(set) var crossAttentionIndex: Int?

    public init(_ w: WeightScope, queryDim: Int, contextDim: Int? = nil, heads: Int, headDim: Int,
                qkvBias: Bool = false, outBias: Bool = true, groupNorm: (groups: Int, eps: Float)? = nil,
                backend: ComputeBackend) throws {
        let inner = heads * headDim
        toQ = try Linear(w.scope("to_q"), in: queryDim, out: inner, bias: qkvBias, backend: backend)
        toK = try Linear(w.scope("to_k"), in: contextDim ?? queryDim, out: inner, bias: qkvBias, backend: backend)
        toV = try Linear(w.scope("to_v"), in: contextDim ?? queryDim, out: inner, bias: qkvBias, backend: backend)
        toOut = try Linear(w.scope("to_out.0"), in: inner, out: queryDim, bias: outBias, backend: backend)
        self.groupNorm = try groupNorm.map { try GroupNorm(w.scope("group_norm"), groups: $0.groups, channels: queryDim, eps: $0.eps) }
        self.heads = heads
        self.headDim = headDim
        self.backend = backend
    }

    public var scale: Float { 1 / Float(headDim).squareRoot() }

    /// Attention over token sequences: x [B, L, C], context [B, Lc, Cc] (self-attention when nil).
    /// With `image` tokens [B, Li, Cc] and their `imageProjections` (`to_k_ip`, `to_v_ip`), adds
    /// IP-Adapter's branch: `imageScale` · softmax(q·K_ipᵀ/√d)·V_ip, before `to_out` (skipped
    /// when the scale is 0). With `residual`, returns `residual + attention` (diffusers'
    /// residual connection), added inside `to_out`'s product. With a `cache`, a cross-attention
    /// layer takes its K and V (and the image branch's) from it, made there at the first step.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, image: Tensor? = nil,
                               imageProjections: (toK: Linear, toV: Linear)? = nil, imageScale: Float = 1,
                               residual: Tensor? = nil, cache: CrossAttentionCache? = nil) -> Tensor {
        let ctx = context ?? x
        // A cross-attention layer's K/V from the cache (made there at the first step), if given one.
        let cached = context != nil ? crossAttentionIndex.flatMap { i in cache.map { ($0, i) } } : nil
        let q = toQ(x)
        let (k, v) = cached.map { c, i in c.keysValues(CrossAttentionCache.key(layer: i, image: false)) { (toK(ctx), toV(ctx)) } }
            ?? (toK(ctx), toV(ctx))
        let out = backend.attention(q: q, k: k, v: v, heads: heads, kvHeads: heads, scale: scale, mask: nil)
        if let image, let ip = imageProjections, imageScale != 0 {
            let (ipK, ipV) = cached.map { c, i in
                c.keysValues(CrossAttentionCache.key(layer: i, image: true)) { (ip.toK(image), ip.toV(image)) }
            } ?? (ip.toK(image), ip.toV(image))
            let ipOut = backend.attention(q: q, k: ipK, v: ipV, heads: heads, kvHeads: heads,
                                          scale: scale, mask: nil)
            axpy(imageScale, ipOut, out)
        }
        return toOut(out, residual: residual)
    }

    /// The VAE mid-block form: NCHW in and out, GroupNorm first, residual added.
    public func spatial(_ x: Tensor) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        let normed = groupNorm.map { $0(x) } ?? x
        let tokens = nchwToTokens(normed)
        let out = tokensToNCHW(self(tokens), height: h, width: w)
        addInPlace(out, x)
        return out
    }
}
