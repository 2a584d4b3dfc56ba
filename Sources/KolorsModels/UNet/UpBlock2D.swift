import KolorsEngine

/// Mirrors diffusers `UpBlock2D`: each resnet takes the hidden state concatenated with one skip
/// (channels), then an optional upsampler.
public final class UpBlock2D: UNetUpBlock, @unchecked Sendable {
    let resnets: [ResnetBlock2D]
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
        upsampler = s.resample ? try Upsample2D(w.scope("upsamplers.0"), channels: s.outChannels, backend: backend) : nil
    }

    public func callAsFunction(_ x: Tensor, skips: [Tensor], siluTemb: Tensor, context: CrossAttentionContext,
                               upsampleSize: (Int, Int)?, cancel: CancellationToken?) throws -> Tensor {
        var h = x
        var remaining = skips
        for r in resnets {
            try cancel?.check()
            h = r(concat([h, remaining.removeLast()], dim: 1), siluTemb: siluTemb)
        }
        if let u = upsampler { h = u(h, outputSize: upsampleSize) }
        return h
    }
}
