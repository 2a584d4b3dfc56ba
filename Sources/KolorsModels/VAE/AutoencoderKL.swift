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

extension AutoencoderKL {
    /// diffusers' `AutoencoderKL.tiled_decode`, exactly: overlapping latent tiles of
    /// `tileLatent` cells (diffusers: `tile_latent_min_size`, 128 for Kolors, i.e. 1024-pixel
    /// tiles) decoded one at a time, blended linearly over `overlapFactor` of a tile (in place,
    /// in diffusers' order), and cropped. Peak memory is that of one tile, whatever the image size.
    public func tiledDecode(_ z: Tensor, tileLatent: Int, overlapFactor: Double = 0.25,
                            cancel: CancellationToken? = nil) throws -> Tensor {
        guard let decoder else { preconditionFailure("AutoencoderKL built without a decoder") }
        let (b, h, w) = (z.shape[0], z.shape[2], z.shape[3])
        let tileSample = tileLatent * config.scaleFactor
        let overlap = Int(Double(tileLatent) * (1 - overlapFactor))
        let blendExtent = Int(Double(tileSample) * overlapFactor)
        let rowLimit = tileSample - blendExtent
        precondition(overlap > 0, "tiledDecode: tiles of \(tileLatent) latent cells are too small")

        // Decode every tile.
        var rows: [[Tensor]] = []
        for i in stride(from: 0, to: h, by: overlap) {
            var row: [Tensor] = []
            for j in stride(from: 0, to: w, by: overlap) {
                try cancel?.check()
                var tile = Self.window(z, top: i, left: j, height: min(tileLatent, h - i), width: min(tileLatent, w - j))
                if let postQuantConv { tile = postQuantConv(tile) }
                row.append(try decoder(tile, cancel: cancel, probe: nil))
            }
            rows.append(row)
        }
        // Blend with the tile above and the tile to the left (both already blended), crop, place.
        var pieces: [[Tensor]] = []
        for i in rows.indices {
            var out: [Tensor] = []
            for j in rows[i].indices {
                let tile = rows[i][j]
                if i > 0 { Self.blendVertical(rows[i - 1][j], into: tile, extent: blendExtent) }
                if j > 0 { Self.blendHorizontal(rows[i][j - 1], into: tile, extent: blendExtent) }
                out.append(Self.window(tile, top: 0, left: 0, height: min(rowLimit, tile.shape[2]), width: min(rowLimit, tile.shape[3])))
            }
            pieces.append(out)
        }
        let outH = pieces.reduce(0) { $0 + $1[0].shape[2] }, outW = pieces[0].reduce(0) { $0 + $1.shape[3] }
        let channels = pieces[0][0].shape[1]
        let result = Tensor(shape: [b, channels, outH, outW], zeroed: false)
        var top = 0
        for row in pieces {
            var left = 0
            for piece in row {
                Self.place(piece, into: result, top: top, left: left)
                left += piece.shape[3]
            }
            top += row[0].shape[2]
        }
        return result
    }

    /// x[:, :, top..<top+height, left..<left+width] as a new tensor.
    static func window(_ x: Tensor, top: Int, left: Int, height: Int, width: Int) -> Tensor {
        let out = Tensor(shape: [x.shape[0], x.shape[1], height, width], zeroed: false)
        copyRegion(from: x, top: top, left: left, to: out, top: 0, left: 0, height: height, width: width)
        return out
    }

    /// Copies `piece` into `dst` at (top, left).
    static func place(_ piece: Tensor, into dst: Tensor, top: Int, left: Int) {
        copyRegion(from: piece, top: 0, left: 0, to: dst, top: top, left: left, height: piece.shape[2], width: piece.shape[3])
    }

    /// A height × width window of every plane of `src` (at srcTop, srcLeft) into `dst` (at dstTop, dstLeft).
    private static func copyRegion(from src: Tensor, top srcTop: Int, left srcLeft: Int, to dst: Tensor, top dstTop: Int,
                                   left dstLeft: Int, height: Int, width: Int) {
        let planes = src.shape[0] * src.shape[1]
        let (sh, sw, dh, dw) = (src.shape[2], src.shape[3], dst.shape[2], dst.shape[3])
        for p in 0..<planes {
            for y in 0..<height {
                (dst.pointer + (p * dh + dstTop + y) * dw + dstLeft)
                    .update(from: src.pointer + (p * sh + srcTop + y) * sw + srcLeft, count: width)
            }
        }
    }

    /// diffusers' `blend_v`: the first rows of `b` fade in from the last rows of `a`, in place.
    static func blendVertical(_ a: Tensor, into b: Tensor, extent: Int) {
        let e = min(a.shape[2], b.shape[2], extent)
        let planes = b.shape[0] * b.shape[1]
        let (ah, bh, aw, bw) = (a.shape[2], b.shape[2], a.shape[3], b.shape[3])
        for y in 0..<e {
            let t = Float(Double(y) / Double(e)), s = Float(1 - Double(y) / Double(e))
            for p in 0..<planes {
                let ar = a.pointer + (p * ah + ah - e + y) * aw, br = b.pointer + (p * bh + y) * bw
                for x in 0..<min(aw, bw) { br[x] = ar[x] * s + br[x] * t }
            }
        }
    }

    /// diffusers' `blend_h`: the first columns of `b` fade in from the last columns of `a`, in place.
    static func blendHorizontal(_ a: Tensor, into b: Tensor, extent: Int) {
        let e = min(a.shape[3], b.shape[3], extent)
        let planes = b.shape[0] * b.shape[1]
        let (ah, bh, aw, bw) = (a.shape[2], b.shape[2], a.shape[3], b.shape[3])
        for p in 0..<planes {
            for y in 0..<min(ah, bh) {
                let ar = a.pointer + (p * ah + y) * aw + aw - e, br = b.pointer + (p * bh + y) * bw
                for x in 0..<e {
                    let t = Float(Double(x) / Double(e)), s = Float(1 - Double(x) / Double(e))
                    br[x] = ar[x] * s + br[x] * t
                }
            }
        }
    }
}
