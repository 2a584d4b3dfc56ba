import KolorsEngine

/// One level of the VAE: diffusers' `DownEncoderBlock2D` (resnets, then an optional stride-2
/// downsampler) or `UpDecoderBlock2D` (resnets, then an optional nearest-2× upsampler). The
/// resnets take no time embedding; GroupNorm eps is 1e-6.
struct VAEBlock {
    enum Resample { case down, up }

    let resnets: [ResnetBlock2D]
    let downsampler: Downsample2D?
    let upsampler: Upsample2D?

    /// `layers` resnets from `inChannels` to `outChannels`, then a resampler when `resample` is set.
    init(_ w: WeightScope, layers: Int, inChannels: Int, outChannels: Int, groups: Int, resample: Resample?,
         backend: ComputeBackend) throws {
        resnets = try (0..<layers).map {
            try ResnetBlock2D(w.scope("resnets.\($0)"), inChannels: $0 == 0 ? inChannels : outChannels, outChannels: outChannels,
                              tembChannels: nil, groups: groups, eps: 1e-6, backend: backend)
        }
        downsampler = resample == .down
            ? try Downsample2D(w.scope("downsamplers.0"), channels: outChannels, padding: 0, backend: backend) : nil
        upsampler = resample == .up ? try Upsample2D(w.scope("upsamplers.0"), channels: outChannels, backend: backend) : nil
    }

    func callAsFunction(_ x: Tensor, cancel: CancellationToken?) throws -> Tensor {
        var h = x
        for r in resnets {
            try cancel?.check()
            h = r(h, siluTemb: nil)
        }
        if let d = downsampler { h = d(h) }
        if let u = upsampler { h = u(h) }
        return h
    }
}
