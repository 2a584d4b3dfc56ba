import KolorsEngine

/// Mirrors diffusers `Downsample2D` with a convolution: 3×3, stride 2. With `padding` 0
/// (the VAE encoder) the input is first zero-padded on the right and bottom only.
public final class Downsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, outChannels: Int? = nil, padding: Int, backend: ComputeBackend) throws {
        let pad = padding == 0 ? Padding2D(top: 0, left: 0, bottom: 1, right: 1) : .symmetric(padding)
        conv = try Conv2d(w.scope("conv"), in: channels, out: outChannels ?? channels, kernel: 3, stride: 2,
                          padding: pad, backend: backend)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x) }
}

/// Mirrors diffusers `Upsample2D` with a convolution: nearest ×2 (or to an explicit size),
/// then 3×3 conv.
public final class Upsample2D: @unchecked Sendable {
    let conv: Conv2d

    public init(_ w: WeightScope, channels: Int, outChannels: Int? = nil, backend: ComputeBackend) throws {
        conv = try Conv2d(w.scope("conv"), in: channels, out: outChannels ?? channels, kernel: 3,
                          padding: .symmetric(1), backend: backend)
    }

    public func callAsFunction(_ x: Tensor, outputSize: (Int, Int)? = nil) -> Tensor {
        let (h, w) = outputSize ?? (x.shape[2] * 2, x.shape[3] * 2)
        if h == x.shape[2] * 2 && w == x.shape[3] * 2 { return conv.upsampled2x(x) }
        return conv(upsampleNearest(x, height: h, width: w))
    }
}
