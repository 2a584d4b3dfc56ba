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
    /// The layer's weight path (`down_blocks.1.attentions.0.transformer_blocks.0.attn2`): a UNet
    /// cross-attention layer finds its K/V in a `UNetConditioning` under it.
    public let path: String

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
        path = String(w.prefix.dropLast())
    }

    public var scale: Float { 1 / Float(headDim).squareRoot() }

    /// Attention over token sequences: x [B, L, C], context [B, Lc, Cc] (self-attention when
    /// nil). With `residual`, returns `residual + attention` (diffusers' residual connection),
    /// added inside `to_out`'s product.
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let ctx = context ?? x
        let out = backend.attention(q: toQ(x), k: toK(ctx), v: toV(ctx), heads: heads, kvHeads: heads, scale: scale, mask: nil)
        return toOut(out, residual: residual)
    }

    /// A UNet cross-attention layer: K and V of the text come from the run's `conditioning`
    /// (made once per run); with IP-Adapter image tokens there, adds IP-Adapter's branch
    /// `imageScale` · softmax(q·K_ipᵀ/√d)·V_ip before `to_out` (`IPAdapterAttnProcessor2_0`).
    public func callAsFunction(_ x: Tensor, conditioning: UNetConditioning, residual: Tensor? = nil) -> Tensor {
        let kv = conditioning.layer(path)
        let q = toQ(x)
        let out = backend.attention(q: q, k: kv.k, v: kv.v, heads: heads, kvHeads: heads, scale: scale, mask: nil)
        if let image = kv.image {
            let ipOut = backend.attention(q: q, k: image.k, v: image.v, heads: heads, kvHeads: heads, scale: scale, mask: nil)
            axpy(conditioning.imageScale, ipOut, out)
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
