import KolorsEngine

/// Mirrors diffusers' VAE `Encoder` (DownEncoderBlock2D levels, mid block, double-z output).
public final class Encoder: @unchecked Sendable {
    let convIn: Conv2d
    let downBlocks: [VAEBlock]
    let midBlock: UNetMidBlock2D
    let convNormOut: GroupNorm
    let convOut: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, backend: ComputeBackend) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        convIn = try Conv2d(w.scope("conv_in"), in: c.inChannels, out: ch[0], kernel: 3, padding: .symmetric(1), backend: backend)
        downBlocks = try (0..<ch.count).map { i in
            try VAEBlock(w.scope("down_blocks.\(i)"), layers: c.layersPerBlock, inChannels: ch[max(0, i - 1)], outChannels: ch[i],
                         groups: g, resample: i < ch.count - 1 ? .down : nil, backend: backend)
        }
        midBlock = try UNetMidBlock2D(w.scope("mid_block"), channels: ch[ch.count - 1], groups: g,
                                      addAttention: c.midBlockAddAttention, backend: backend)
        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: g, channels: ch[ch.count - 1], eps: 1e-6)
        convOut = try Conv2d(w.scope("conv_out"), in: ch[ch.count - 1], out: 2 * c.latentChannels, kernel: 3,
                             padding: .symmetric(1), backend: backend)
    }

    func callAsFunction(_ x: Tensor, cancel: CancellationToken?, probe: ((String, Tensor) -> Void)?) throws -> Tensor {
        var h = convIn(x)
        for (i, block) in downBlocks.enumerated() {
            h = try block(h, cancel: cancel)
            probe?("encoder.down_blocks.\(i)", h)
        }
        h = try midBlock(h, cancel: cancel)
        probe?("encoder.mid_block", h)
        return convOut(convNormOut(h, silu: true))
    }
}
