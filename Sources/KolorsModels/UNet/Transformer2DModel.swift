import KolorsEngine

/// Mirrors diffusers `Transformer2DModel` for continuous inputs: GroupNorm (eps 1e-6),
/// proj_in (Linear, or 1×1 conv without linear projection), `depth` BasicTransformerBlocks,
/// proj_out, residual.
public final class Transformer2DModel: @unchecked Sendable {
    let norm: GroupNorm
    let projInLinear: Linear?
    let projInConv: Conv2d?
    public let blocks: [BasicTransformerBlock]
    let projOutLinear: Linear?
    let projOutConv: Conv2d?

    public init(_ w: WeightScope, channels: Int, heads: Int, depth: Int, contextDim: Int, groups: Int,
                linearProjection: Bool, backend: ComputeBackend) throws {
        norm = try GroupNorm(w.scope("norm"), groups: groups, channels: channels, eps: 1e-6)
        if linearProjection {
            projInLinear = try Linear(w.scope("proj_in"), in: channels, out: channels, bias: true, backend: backend)
            projOutLinear = try Linear(w.scope("proj_out"), in: channels, out: channels, bias: true, backend: backend)
            projInConv = nil
            projOutConv = nil
        } else {
            projInConv = try Conv2d(w.scope("proj_in"), in: channels, out: channels, kernel: 1, padding: .none, backend: backend)
            projOutConv = try Conv2d(w.scope("proj_out"), in: channels, out: channels, kernel: 1, padding: .none, backend: backend)
            projInLinear = nil
            projOutLinear = nil
        }
        blocks = try (0..<depth).map {
            try BasicTransformerBlock(w.scope("transformer_blocks.\($0)"), dim: channels, heads: heads,
                                      headDim: channels / heads, contextDim: contextDim, backend: backend)
        }
    }

    public func callAsFunction(_ x: Tensor, conditioning: UNetConditioning, cancel: CancellationToken?) throws -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        var hidden = norm(x)
        if let conv = projInConv { hidden = conv(hidden) }
        hidden = nchwToTokens(hidden)
        if let lin = projInLinear { hidden = lin(hidden) }
        for block in blocks {
            try cancel?.check()
            hidden = block(hidden, conditioning: conditioning)
        }
        if let lin = projOutLinear { hidden = lin(hidden) }
        var out = tokensToNCHW(hidden, height: h, width: w)
        if let conv = projOutConv { out = conv(out) }
        addInPlace(out, x)
        return out
    }
}
