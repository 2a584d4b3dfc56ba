import CKolorsKernels
import KolorsEngine

/// The diagonal Gaussian posterior the VAE encoder returns (`DiagonalGaussianDistribution`).
public struct DiagonalGaussian: Sendable {
    public let mean: Tensor
    /// Clamped to [−30, 20] as diffusers does.
    public let logvar: Tensor
    public var std: Tensor {
        let s = scale(logvar, 0.5)
        return exp(s)
    }

    /// mean + std · noise (noise drawn by the caller, e.g. from the torch-compatible generator).
    public func sample(noise: Tensor) -> Tensor {
        precondition(noise.count == mean.count)
        let out = std
        let o = out.pointer, m = mean.pointer, n = noise.pointer
        for i in 0..<out.count { o[i] = m[i] + o[i] * n[i] }
        return out
    }
}

/// Mirrors diffusers `AutoencoderKL`: encoder (+ quant_conv) to a Gaussian posterior, decoder
/// (+ post_quant_conv) back to pixels in [−1, 1]. float32.
public final class AutoencoderKL: @unchecked Sendable {
    public let config: AutoencoderKLConfig
    let encoder: Encoder?
    let decoder: Decoder?
    let quantConv: Conv2d?
    let postQuantConv: Conv2d?
    public let unusedWeights: [String]

    /// Builds the encoder, the decoder or both (the txt2img pipeline needs only the decoder).
    public init(config: AutoencoderKLConfig, weights: WeightLoader, encoder wantEncoder: Bool = true,
                decoder wantDecoder: Bool = true, backend: ComputeBackend = Backends.float32) throws {
        try config.validate()
        self.config = config
        let w = weights.scope("")
        let lc = config.latentChannels
        encoder = wantEncoder ? try Encoder(w.scope("encoder"), config: config, backend: backend) : nil
        quantConv = wantEncoder && config.useQuantConv
            ? try Conv2d(w.scope("quant_conv"), in: 2 * lc, out: 2 * lc, kernel: 1, padding: .none, backend: backend) : nil
        decoder = wantDecoder ? try Decoder(w.scope("decoder"), config: config, backend: backend) : nil
        postQuantConv = wantDecoder && config.usePostQuantConv
            ? try Conv2d(w.scope("post_quant_conv"), in: lc, out: lc, kernel: 1, padding: .none, backend: backend) : nil
        unusedWeights = wantEncoder && wantDecoder ? weights.unusedNames : []
    }

    public static func load(from model: DiffusersModel, variant: WeightVariant = .fp16, encoder: Bool = true,
                            decoder: Bool = true, residency: WeightResidency = .float32,
                            backend: ComputeBackend = Backends.float32) throws -> AutoencoderKL {
        let config = try model.config("vae", as: AutoencoderKLConfig.self)
        let loader = WeightLoader(component: "vae", archive: try model.weights("vae", variant: variant),
                                  residency: residency, aliases: AutoencoderKLConfig.weightAliases)
        return try AutoencoderKL(config: config, weights: loader, encoder: encoder, decoder: decoder, backend: backend)
    }

    /// Encodes images [B, 3, H, W] in [−1, 1] to the latent posterior.
    public func encode(_ x: Tensor, cancel: CancellationToken? = nil,
                       probe: ((String, Tensor) -> Void)? = nil) throws -> DiagonalGaussian {
        guard let encoder else { preconditionFailure("AutoencoderKL built without an encoder") }
        var moments = try encoder(x, cancel: cancel, probe: probe)
        if let quantConv { moments = quantConv(moments) }
        let b = x.shape[0], lc = config.latentChannels
        let (h, w) = (moments.shape[2], moments.shape[3])
        let mean = Tensor(shape: [b, lc, h, w], zeroed: false)
        let logvar = Tensor(shape: [b, lc, h, w], zeroed: false)
        let plane = lc * h * w
        for bi in 0..<b {
            mean.pointer.advanced(by: bi * plane).update(from: moments.pointer + bi * 2 * plane, count: plane)
            let lv = logvar.pointer + bi * plane
            lv.update(from: moments.pointer + bi * 2 * plane + plane, count: plane)
            for i in 0..<plane { lv[i] = min(max(lv[i], -30), 20) }
        }
        return DiagonalGaussian(mean: mean, logvar: logvar)
    }

    /// Decodes latents [B, C, h, w] (already divided by the scaling factor) to images in [−1, 1].
    public func decode(_ z: Tensor, cancel: CancellationToken? = nil,
                       probe: ((String, Tensor) -> Void)? = nil) throws -> Tensor {
        guard let decoder else { preconditionFailure("AutoencoderKL built without a decoder") }
        let input = postQuantConv.map { $0(z) } ?? z
        return try decoder(input, cancel: cancel, probe: probe)
    }
}
