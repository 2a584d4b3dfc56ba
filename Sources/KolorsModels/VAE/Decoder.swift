import KolorsEngine

/// Mirrors diffusers' VAE `Decoder` (mid block, UpDecoderBlock2D levels, RGB output).
public final class Decoder: @unchecked Sendable {
    let convIn: Conv2d
    let midBlock: UNetMidBlock2D
    let upBlocks: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)]
    let convNormOut: GroupNorm
    let convOut: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, backend: ComputeBackend) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        let rch = Array(ch.reversed())
        convIn = try Conv2d(w.scope("conv_in"), in: c.latentChannels, out: rch[0], kernel: 3, padding: .symmetric(1), backend: backend)
        midBlock = try UNetMidBlock2D(w.scope("mid_block"), channels: rch[0], groups: g,
                                      addAttention: c.midBlockAddAttention, backend: backend)
        var blocks: [(resnets: [ResnetBlock2D], upsampler: Upsample2D?)] = []
        var output = rch[0]
        for i in 0..<rch.count {
            let prev = output
            output = rch[i]
            let s = w.scope("up_blocks.\(i)")
            let resnets = try (0..<(c.layersPerBlock + 1)).map {
                try ResnetBlock2D(s.scope("resnets.\($0)"), inChannels: $0 == 0 ? prev : output, outChannels: output,
                                  tembChannels: nil, groups: g, eps: 1e-6, backend: backend)
            }
            let up = i < rch.count - 1 ? try Upsample2D(s.scope("upsamplers.0"), channels: output, backend: backend) : nil
            blocks.append((resnets, up))
        }
        upBlocks = blocks
        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: g, channels: ch[0], eps: 1e-6)
        convOut = try Conv2d(w.scope("conv_out"), in: ch[0], out: c.outChannels, kernel: 3, padding: .symmetric(1), backend: backend)
    }

    func callAsFunction(_ z: Tensor, cancel: CancellationToken?, probe: ((String, Tensor) -> Void)?) throws -> Tensor {
        var h = convIn(z)
        h = try midBlock(h, cancel: cancel)
        probe?("decoder.mid_block", h)
        for (i, block) in upBlocks.enumerated() {
            for r in block.resnets {
                try cancel?.check()
                h = r(h, siluTemb: nil)
            }
            if let u = block.upsampler { h = u(h) }
            probe?("decoder.up_blocks.\(i)", h)
        }
        return convOut(convNormOut(h, silu: true))
    }
}
