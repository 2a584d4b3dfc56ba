import KolorsEngine

/// Mirrors diffusers `ResnetBlock2D` (time embedding added, "default" scale-shift; used by the
/// UNet with a time embedding and by the VAE without one).
public final class ResnetBlock2D: @unchecked Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d
    let timeEmbProj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    let convShortcut: Conv2d?
    let outputScaleFactor: Float

    public init(_ w: WeightScope, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int, eps: Float,
                outputScaleFactor: Float = 1, backend: ComputeBackend) throws {
        norm1 = try GroupNorm(w.scope("norm1"), groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(w.scope("conv1"), in: inChannels, out: outChannels, kernel: 3, padding: .symmetric(1), backend: backend)
        timeEmbProj = try tembChannels.map {
            try Linear(w.scope("time_emb_proj"), in: $0, out: outChannels, bias: true, backend: backend)
        }
        norm2 = try GroupNorm(w.scope("norm2"), groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(w.scope("conv2"), in: outChannels, out: outChannels, kernel: 3, padding: .symmetric(1), backend: backend)
        convShortcut = inChannels != outChannels
            ? try Conv2d(w.scope("conv_shortcut"), in: inChannels, out: outChannels, kernel: 1, padding: .none, backend: backend)
            : nil
        self.outputScaleFactor = outputScaleFactor
    }

    /// `siluTemb` is silu(emb) [B, tembChannels], computed once per UNet call.
    public func callAsFunction(_ x: Tensor, siluTemb: Tensor?) -> Tensor {
        var h = conv1(norm1(x, silu: true))
        if let proj = timeEmbProj, let siluTemb {
            addPerChannel(h, proj(siluTemb))
        }
        h = conv2(norm2(h, silu: true))
        let shortcut = convShortcut.map { $0(x) } ?? x
        addInPlace(h, shortcut)
        if outputScaleFactor != 1 { h = scale(h, 1 / outputScaleFactor, inPlace: true) }
        return h
    }
}
