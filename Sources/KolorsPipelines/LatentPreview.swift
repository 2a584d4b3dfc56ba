import KolorsImageIO

/// Cheap per-step previews: a linear map from the four SDXL latent channels to RGB (Kolors
/// uses the SDXL VAE), applied to the predicted clean latent x0 of a step — microseconds per
/// frame at latent resolution — plus resampling to the size the preview pane wants.
public enum LatentPreview {
    /// ComfyUI's SDXL fit: rows = latent channel, columns = R, G, B; for latents in model
    /// space (already multiplied by the VAE scaling factor 0.13025).
    public static let sdxlFactors: [[Float]] = [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ]
    public static let sdxlBias: [Float] = [0.1084, -0.0175, -0.0011]

    /// Maps a CHW latent (4 × height × width floats, model space) to an RGB image of the same
    /// height and width: x = bias + Σ latent·factor, clamped to [-1, 1], then (x + 1)·127.5.
    /// NaN (a step that overflowed) shows as black instead of trapping in the UInt8 conversion.
    public static func rgb(latent: [Float], height: Int, width: Int,
                           factors: [[Float]] = sdxlFactors, bias: [Float] = sdxlBias) -> RGBImage {
        let plane = height * width
        precondition(latent.count == 4 * plane, "LatentPreview: \(latent.count) floats for 4×\(height)×\(width)")
        precondition(factors.count == 4 && factors.allSatisfy { $0.count == 3 } && bias.count == 3)
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        latent.withUnsafeBufferPointer { l in
            pixels.withUnsafeMutableBufferPointer { out in
                for i in 0..<plane {
                    let c0 = l[i], c1 = l[plane + i], c2 = l[2 * plane + i], c3 = l[3 * plane + i]
                    for k in 0..<3 {
                        var x = bias[k] + c0 * factors[0][k] + c1 * factors[1][k] + c2 * factors[2][k] + c3 * factors[3][k]
                        x = x.isNaN ? -1 : min(max(x, -1), 1)
                        out[3 * i + k] = UInt8(((x + 1) * 127.5).rounded())
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    public enum Filter: Sendable {
        case nearest
        /// Bilinear when enlarging; area averaging (box filter) when shrinking, so thumbnails do not alias.
        case smooth
    }

    /// Resamples `image` to exactly `width` × `height`.
    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter = .smooth) -> RGBImage {
        precondition(width > 0 && height > 0)
        if image.width == width && image.height == height { return image }
        guard image.width > 0, image.height > 0 else { return RGBImage(width: width, height: height) }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let sw = image.width, sh = image.height
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                switch filter {
                case .nearest:
                    for y in 0..<height {
                        let sy = min(sh - 1, y * sh / height)
                        for x in 0..<width {
                            let sx = min(sw - 1, x * sw / width)
                            let s = (sy * sw + sx) * 3, d = (y * width + x) * 3
                            dst[d] = src[s]; dst[d + 1] = src[s + 1]; dst[d + 2] = src[s + 2]
                        }
                    }
                case .smooth:
                    // Separable: columns first into a float buffer (width × sh), then rows.
                    let hTaps = taps(source: sw, target: width)
                    let vTaps = taps(source: sh, target: height)
                    var mid = [Float](repeating: 0, count: width * sh * 3)
                    mid.withUnsafeMutableBufferPointer { m in
                        for y in 0..<sh {
                            for x in 0..<width {
                                var r: Float = 0, g: Float = 0, b: Float = 0
                                for (sx, w) in hTaps[x] {
                                    let s = (y * sw + sx) * 3
                                    r += w * Float(src[s]); g += w * Float(src[s + 1]); b += w * Float(src[s + 2])
                                }
                                let d = (y * width + x) * 3
                                m[d] = r; m[d + 1] = g; m[d + 2] = b
                            }
                        }
                        for y in 0..<height {
                            for x in 0..<width {
                                var r: Float = 0, g: Float = 0, b: Float = 0
                                for (sy, w) in vTaps[y] {
                                    let s = (sy * width + x) * 3
                                    r += w * m[s]; g += w * m[s + 1]; b += w * m[s + 2]
                                }
                                let d = (y * width + x) * 3
                                dst[d] = UInt8(min(255, max(0, r.rounded())))
                                dst[d + 1] = UInt8(min(255, max(0, g.rounded())))
                                dst[d + 2] = UInt8(min(255, max(0, b.rounded())))
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// 1-D resampling weights: a box over the covered source samples when shrinking, linear
    /// interpolation between the two nearest samples (pixel centres aligned) when enlarging.
    static func taps(source: Int, target: Int) -> [[(Int, Float)]] {
        (0..<target).map { i in
            if target < source {
                let a = Double(i) * Double(source) / Double(target)
                let b = Double(i + 1) * Double(source) / Double(target)
                var out: [(Int, Float)] = []
                var j = Int(a)
                while Double(j) < b && j < source {
                    let lo = max(a, Double(j)), hi = min(b, Double(j + 1))
                    if hi > lo { out.append((j, Float((hi - lo) / (b - a)))) }
                    j += 1
                }
                return out
            } else {
                let c = max(0, (Double(i) + 0.5) * Double(source) / Double(target) - 0.5)
                let j0 = min(source - 1, Int(c)), j1 = min(source - 1, j0 + 1)
                let f = Float(c - Double(j0))
                return j0 == j1 ? [(j0, Float(1))] : [(j0, 1 - f), (j1, f)]
            }
        }
    }

    /// The largest size with `image`'s aspect ratio that fits in `maxWidth` × `maxHeight`
    /// (each side at least 1).
    public static func fittedSize(width: Int, height: Int, maxWidth: Int, maxHeight: Int) -> (width: Int, height: Int) {
        guard width > 0, height > 0, maxWidth > 0, maxHeight > 0 else { return (max(1, maxWidth), max(1, maxHeight)) }
        let scale = min(Double(maxWidth) / Double(width), Double(maxHeight) / Double(height))
        return (max(1, min(maxWidth, Int((Double(width) * scale).rounded()))),
                max(1, min(maxHeight, Int((Double(height) * scale).rounded()))))
    }

    /// `image` resized to fit in `maxWidth` × `maxHeight`, keeping its aspect ratio.
    public static func fit(_ image: RGBImage, maxWidth: Int, maxHeight: Int, filter: Filter = .smooth) -> RGBImage {
        let s = fittedSize(width: image.width, height: image.height, maxWidth: maxWidth, maxHeight: maxHeight)
        return resize(image, width: s.width, height: s.height, filter: filter)
    }
}
