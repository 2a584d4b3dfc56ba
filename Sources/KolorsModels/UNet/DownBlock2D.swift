import KolorsEngine

/// Mirrors diffusers `DownBlock2D`: resnets, then an optional stride-2 downsampler.
public final class DownBlock2D: UNetDownBlock, @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    let downsampler: Downsample2D?

    init(_ w: WeightScope, _ s: LevelSpec, backend: ComputeBackend) throws {
        resnets = try (0..<s.layers).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: $0 == 0 ? s.inChannels : s.outChannels,
                              outChannels: s.outChannels, tembChannels: s.tembChannels, groups: s.groups, eps: s.eps,
                              backend: backend)
        }
        downsampler = s.resample
            ? try Downsample2D(w.scope("downsamplers.0"), channels: s.outChannels, padding: s.downsamplePadding, backend: backend)
            : nil
    }

    public func callAsFunction(_ x: Tensor, siluTemb: Tensor, context: CrossAttentionContext, cancel: CancellationToken?) throws -> (Tensor, [Tensor]) {
        var h = x
        var skips: [Tensor] = []
        for r in resnets {
            try cancel?.check()
            h = r(h, siluTemb: siluTemb)
            skips.append(h)
        }
        if let d = downsampler {
            h = d(h)
            skips.append(h)
        }
        return (h, skips)
    }
}
