import KolorsEngine

/// Mirrors diffusers' VAE `Encoder` (DownEncoderBlock2D levels, mid block, double-z output).
public final class Encoder: @unchecked Sendable {
    let convIn: Conv2d
    let downBlocks: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)]
    let midBlock: UNetMidBlock2D
    let convNormOut: GroupNorm
    let convOut: Conv2d

    init(_ w: WeightScope, config c: AutoencoderKLConfig, backend: ComputeBackend) throws {
        let ch = c.blockOutChannels, g = c.normNumGroups
        convIn = try Conv2d(w.scope("conv_in"), in: c.inChannels, out: ch[0], kernel: 3, padding: .symmetric(1), backend: backend)
        var blocks: [(resnets: [ResnetBlock2D], downsampler: Downsample2D?)] = []
        var output = ch[0]
        for i in 0..<ch.count {
            let input = output
            output = ch[i]
            let s = w.scope("down_blocks.\(i)")
            let resnets = try (0..<c.layersPerBlock).map {
                try ResnetBlock2D(s.scope("resnets.\($0)"), inChannels: $0 == 0 ? input : output, outChannels: output,
                                  tembChannels: nil, groups: g, eps: 1e-6, backend: backend)
            }
            let down = i < ch.count - 1
                ? try Downsample2D(s.scope("downsamplers.0"), channels: output, padding: 0, backend: backend)
                : nil
            blocks.append((resnets, down))
        }
        downBlocks = blocks
        midBlock = try UNetMidBlock2D(w.scope("mid_block"), channels: ch[ch.count - 1], groups: g,
                                      addAttention: c.midBlockAddAttention, backend: backend)
        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: g, channels: ch[ch.count - 1], eps: 1e-6)
        convOut = try Conv2d(w.scope("conv_out"), in: ch[ch.count - 1], out: 2 * c.latentChannels, kernel: 3,
                             padding: .symmetric(1), backend: backend)
    }

    func callAsFunction(_ x: Tensor, cancel: CancellationToken?, probe: ((String, Tensor) -> Void)?) throws -> Tensor {
        var h = convIn(x)
        for (i, block) in downBlocks.enumerated() {
            for r in block.resnets {
                try cancel?.check()
                h = r(h, siluTemb: nil)
            }
            if let d = block.downsampler { h = d(h) }
            probe?("encoder.down_blocks.\(i)", h)
        }
        h = try midBlock(h, cancel: cancel)
        probe?("encoder.mid_block", h)
        return convOut(convNormOut(h, silu: true))
    }
}
