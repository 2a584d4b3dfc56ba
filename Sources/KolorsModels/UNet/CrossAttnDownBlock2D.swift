import KolorsEngine

/// Mirrors diffusers `CrossAttnDownBlock2D`: (resnet, transformer) pairs, then an optional
/// stride-2 downsampler.
public final class CrossAttnDownBlock2D: UNetDownBlock, @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    init(_ w: WeightScope, _ s: LevelSpec, backend: ComputeBackend) throws {
        resnets = try (0..<s.layers).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: $0 == 0 ? s.inChannels : s.outChannels,
                              outChannels: s.outChannels, tembChannels: s.tembChannels, groups: s.groups, eps: s.eps,
                              backend: backend)
        }
        attentions = try (0..<s.layers).map {
            try Transformer2DModel(w.scope("attentions.\($0)"), channels: s.outChannels, heads: s.heads, depth: s.depth,
                                   contextDim: s.contextDim, groups: s.groups, linearProjection: s.linearProjection,
                                   backend: backend)
        }
        downsampler = s.resample
            ? try Downsample2D(w.scope("downsamplers.0"), channels: s.outChannels, padding: s.downsamplePadding, backend: backend)
            : nil
    }

    public func callAsFunction(_ x: Tensor, siluTemb: Tensor, context: CrossAttentionContext, cancel: CancellationToken?) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (r, a) in zip(resnets, attentions) {
            try cancel?.check()
            h = r(h, siluTemb: siluTemb)
            h = try a(h, context: context, cancel: cancel)
            skips.append(h)
        }
        if let d = downsampler {
            h = d(h)
            skips.append(h)
        }
        return (h, skips)
    }
}
