import KolorsEngine

/// Mirrors diffusers `BasicTransformerBlock` (layer norms, self-attention, cross-attention,
/// GEGLU feed-forward; each with a residual connection).
public final class BasicTransformerBlock: @unchecked Sendable {
    let norm1: LayerNorm
    let attn1: Attention
    let norm2: LayerNorm
    public let attn2: Attention
    let norm3: LayerNorm
    let ffProj: Linear
    let ffOut: Linear

    public init(_ w: WeightScope, dim: Int, heads: Int, headDim: Int, contextDim: Int, backend: ComputeBackend) throws {
        norm1 = try LayerNorm(w.scope("norm1"), dim: dim, eps: 1e-5)
        attn1 = try Attention(w.scope("attn1"), queryDim: dim, heads: heads, headDim: headDim, backend: backend)
        norm2 = try LayerNorm(w.scope("norm2"), dim: dim, eps: 1e-5)
        attn2 = try Attention(w.scope("attn2"), queryDim: dim, contextDim: contextDim, heads: heads, headDim: headDim, backend: backend)
        norm3 = try LayerNorm(w.scope("norm3"), dim: dim, eps: 1e-5)
        // FeedForward(dim, activation_fn="geglu"): net.0 = GEGLU(proj: dim → 2·4·dim), net.2 = Linear(4·dim → dim)
        ffProj = try Linear(w.scope("ff.net.0.proj"), in: dim, out: 8 * dim, bias: true, backend: backend)
        ffOut = try Linear(w.scope("ff.net.2"), in: 4 * dim, out: dim, bias: true, backend: backend)
    }

    /// x [B, L, dim]; returns the block's output (each residual add happens inside the product
    /// that ends its branch).
    public func callAsFunction(_ x: Tensor, conditioning: UNetConditioning) -> Tensor {
        var x = attn1(norm1(x), residual: x)
        x = attn2(norm2(x), conditioning: conditioning, residual: x)
        return ffOut(geglu(ffProj(norm3(x))), residual: x)
    }
}
