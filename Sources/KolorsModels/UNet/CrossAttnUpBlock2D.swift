import KolorsEngine

/// Mirrors diffusers `CrossAttnUpBlock2D`: (concat skip → resnet → transformer) per layer,
/// then an optional upsampler.
public final class CrossAttnUpBlock2D: UNetUpBlock, @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?
    public var resnetCount: Int { resnets.count }
    public var hasUpsampler: Bool { upsampler != nil }

    init(_ w: WeightScope, _ s: LevelSpec, backend: ComputeBackend) throws {
        resnets = try (0..<s.layers).map { j in
            let skip = j == s.layers - 1 ? s.inChannels : s.outChannels
            let input = j == 0 ? s.prevOutChannels : s.outChannels
            return try ResnetBlock2D(w.scope("resnets.\(j)"), inChannels: input + skip, outChannels: s.outChannels,
                                     tembChannels: s.tembChannels, groups: s.groups, eps: s.eps, backend: backend)
        }
        attentions = try (0..<s.layers).map {
            try Transformer2DModel(w.scope("attentions.\($0)"), channels: s.outChannels, heads: s.heads, depth: s.depth,
                                   contextDim: s.contextDim, groups: s.groups, linearProjection: s.linearProjection,
                                   backend: backend)
        }
        upsampler = s.resample ? try Upsample2D(w.scope("upsamplers.0"), channels: s.outChannels, backend: backend) : nil
    }

    public func callAsFunction(_ x: Tensor, skips: [Tensor], siluTemb: Tensor, context: CrossAttentionContext,
                               upsampleSize: (Int, Int)?, cancel: CancellationToken?) throws -> Tensor {
        var h = x
        var remaining = skips
        for (r, a) in zip(resnets, attentions) {
            try cancel?.check()
            h = r(concat([h, remaining.removeLast()], dim: 1), siluTemb: siluTemb)
            h = try a(h, context: context, cancel: cancel)
        }
        if let u = upsampler { h = u(h, outputSize: upsampleSize) }
        return h
    }
}
