import KolorsEngine

/// Mirrors diffusers `UpBlock2D` and, with `crossAttention`, `CrossAttnUpBlock2D`: each resnet
/// takes the hidden state concatenated with one skip (channels, the last skip first), followed
/// by its transformer when there are attentions; then an optional upsampler.
public final class UpBlock2D: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    /// One transformer per resnet (`CrossAttnUpBlock2D`), or none (`UpBlock2D`).
    public let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?
    public var resnetCount: Int { resnets.count }
    public var hasUpsampler: Bool { upsampler != nil }

    init(_ w: WeightScope, _ s: LevelSpec, crossAttention: Bool, backend: ComputeBackend) throws {
        resnets = try (0..<s.layers).map { j in
            let skip = j == s.layers - 1 ? s.inChannels : s.outChannels
            let input = j == 0 ? s.prevOutChannels : s.outChannels
            return try ResnetBlock2D(w.scope("resnets.\(j)"), inChannels: input + skip, outChannels: s.outChannels,
                                     tembChannels: s.tembChannels, groups: s.groups, eps: s.eps, backend: backend)
        }
        attentions = crossAttention
            ? try (0..<s.layers).map {
                try Transformer2DModel(w.scope("attentions.\($0)"), channels: s.outChannels, heads: s.heads, depth: s.depth,
                                       contextDim: s.contextDim, groups: s.groups, linearProjection: s.linearProjection,
                                       backend: backend)
            }
            : []
        upsampler = s.resample ? try Upsample2D(w.scope("upsamplers.0"), channels: s.outChannels, backend: backend) : nil
    }

    /// Runs the layers from `start` on (DeepCache's shallow path enters part-way, with one skip
    /// per layer run); `record` sees the hidden state entering each layer, before its concat.
    public func callAsFunction(_ x: Tensor, skips: [Tensor], siluTemb: Tensor, conditioning: UNetConditioning,
                               upsampleSize: (Int, Int)?, from start: Int = 0, record: ((Int, Tensor) -> Void)? = nil,
                               cancel: CancellationToken?) throws -> Tensor {
        precondition(skips.count == resnets.count - start, "up block: \(skips.count) skips for layers \(start)..<\(resnets.count)")
        var h = x
        var remaining = skips
        for i in start..<resnets.count {
            try cancel?.check()
            record?(i, h)
            h = resnets[i](concat([h, remaining.removeLast()], dim: 1), siluTemb: siluTemb)
            if !attentions.isEmpty { h = try attentions[i](h, conditioning: conditioning, cancel: cancel) }
        }
        if let u = upsampler { h = u(h, outputSize: upsampleSize) }
        return h
    }
}
