import KolorsEngine

/// Mirrors diffusers `UNetMidBlock2DCrossAttn` (one transformer): resnet → transformer → resnet.
public final class UNetMidBlock2DCrossAttn: @unchecked Sendable {
    let resnets: [ResnetBlock2D]
    public let attentions: [Transformer2DModel]

    init(_ w: WeightScope, channels: Int, heads: Int, depth: Int, contextDim: Int, tembChannels: Int, groups: Int,
         eps: Float, outputScaleFactor: Float, linearProjection: Bool, backend: ComputeBackend) throws {
        resnets = try (0..<2).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: channels, outChannels: channels, tembChannels: tembChannels,
                              groups: groups, eps: eps, outputScaleFactor: outputScaleFactor, backend: backend)
        }
        attentions = [try Transformer2DModel(w.scope("attentions.0"), channels: channels, heads: heads, depth: depth,
                                             contextDim: contextDim, groups: groups, linearProjection: linearProjection,
                                             backend: backend)]
    }

    func callAsFunction(_ x: Tensor, siluTemb: Tensor, conditioning: UNetConditioning, cancel: CancellationToken?) throws -> Tensor {
        var h = resnets[0](x, siluTemb: siluTemb)
        h = try attentions[0](h, conditioning: conditioning, cancel: cancel)
        try cancel?.check()
        return resnets[1](h, siluTemb: siluTemb)
    }
}
