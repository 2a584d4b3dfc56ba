import KolorsEngine

/// Mirrors diffusers `DownBlock2D` and, with `crossAttention`, `CrossAttnDownBlock2D`: resnets
/// (each followed by its transformer when there are attentions), then an optional stride-2
/// downsampler. Each layer's output, and the downsampler's, is a skip for the up path.
public final class DownBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    /// One transformer per resnet (`CrossAttnDownBlock2D`), or none (`DownBlock2D`).
    public let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    init(_ w: WeightScope, _ s: LevelSpec, crossAttention: Bool, backend: ComputeBackend) throws {
        resnets = try (0..<s.layers).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: $0 == 0 ? s.inChannels : s.outChannels,
                              outChannels: s.outChannels, tembChannels: s.tembChannels, groups: s.groups, eps: s.eps,
                              backend: backend)
        }
        attentions = crossAttention
            ? try (0..<s.layers).map {
                try Transformer2DModel(w.scope("attentions.\($0)"), channels: s.outChannels, heads: s.heads, depth: s.depth,
                                       contextDim: s.contextDim, groups: s.groups, linearProjection: s.linearProjection,
                                       backend: backend)
            }
            : []
        downsampler = s.resample
            ? try Downsample2D(w.scope("downsamplers.0"), channels: s.outChannels, padding: s.downsamplePadding, backend: backend)
            : nil
    }

    /// The block's output and skips. `layers` stops after that many resnet(+transformer) layers,
    /// before the downsampler (DeepCache's shallow path).
    public func callAsFunction(_ x: Tensor, siluTemb: Tensor, conditioning: UNetConditioning, layers: Int? = nil,
                               cancel: CancellationToken?) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for (i, r) in resnets.enumerated() {
            if let layers, i == layers { return (h, skips) }
            try cancel?.check()
            h = r(h, siluTemb: siluTemb)
            if !attentions.isEmpty { h = try attentions[i](h, conditioning: conditioning, cancel: cancel) }
            skips.append(h)
        }
        if let d = downsampler {
            h = d(h)
            skips.append(h)
        }
        return (h, skips)
    }
}
