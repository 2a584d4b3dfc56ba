import KolorsEngine

/// Mirrors diffusers' VAE `Decoder` (mid block, UpDecoderBlock2D levels, RGB output).
public final class Decoder: @unchecked Sendable {
    let convIn: Conv2d
    let midBlock: UNetMidBlock2D
    let upBlocks: [VAEBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, backend: ComputeBackend) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        let rch = Array(ch.reversed())
        convIn = try Conv2d(w.scope("conv_in"), in: c.latentChannels, out: rch[0], kernel: 3, padding: .symmetric(1), backend: backend)
        midBlock = try UNetMidBlock2D(w.scope("mid_block"), channels: rch[0], groups: g,
                                      addAttention: c.midBlockAddAttention, backend: backend)
        upBlocks = try (0..<rch.count).map { i in
            try VAEBlock(w.scope("up_blocks.\(i)"), layers: c.layersPerBlock + 1, inChannels: rch[max(0, i - 1)],
                         outChannels: rch[i], groups: g, resample: i < rch.count - 1 ? .up : nil, backend: backend)
        }
        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: g, channels: ch[0], eps: 1e-6)
        convOut = try Conv2d(w.scope("conv_out"), in: ch[0], out: c.outChannels, kernel: 3, padding: .symmetric(1), backend: backend)
    }

    func callAsFunction(_ z: Tensor, cancel: CancellationToken?, probe: ((String, Tensor) -> Void)?) throws -> Tensor {
        var h = convIn(z)
        h = try midBlock(h, cancel: cancel)
        probe?("decoder.mid_block", h)
        for (i, block) in upBlocks.enumerated() {
            h = try block(h, cancel: cancel)
            probe?("decoder.up_blocks.\(i)", h)
        }
        return convOut(convNormOut(h, silu: true))
    }
}
