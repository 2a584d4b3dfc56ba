import KolorsEngine

/// Mirrors diffusers `UNetMidBlock2D` as the VAE uses it: resnet → single-head attention
/// (GroupNorm, residual) → resnet, no time embedding.
public final class UNetMidBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let attention: Attention?

    init(_ w: WeightScope, channels: Int, groups: Int, addAttention: Bool, backend: ComputeBackend) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: channels, outChannels: channels, tembChannels: nil,
                              groups: groups, eps: 1e-6, backend: backend)
        }
        attention = addAttention
            ? try Attention(w.scope("attentions.0"), queryDim: channels, heads: 1, headDim: channels, qkvBias: true,
                            groupNorm: (groups, 1e-6), backend: backend)
            : nil
    }

    func callAsFunction(_ x: Tensor, cancel: CancellationToken?) throws -> Tensor {
        var h = resnets[0](x, siluTemb: nil)
        try cancel?.check()
        if let attention { h = attention.spatial(h) }
        try cancel?.check()
        return resnets[1](h, siluTemb: nil)
    }
}
