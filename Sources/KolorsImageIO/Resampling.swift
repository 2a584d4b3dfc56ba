import Foundation

/// Pillow's `Image.resize` for 8-bit RGB images, reproduced exactly: separable convolution
/// with antialiasing (the filter support grows with the downscale factor), coefficients in
/// 22-bit fixed point, a horizontal pass into an 8-bit image, then a vertical pass. diffusers
/// resizes img2img inputs with it (LANCZOS) and CLIP's image processor does too (BICUBIC).
public enum PillowResample: Sendable {
    case bilinear, bicubic, lanczos

    var support: Double {
        switch self {
        case .bilinear: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .bilinear:
            let a = abs(x)
            return a < 1 ? 1 - a : 0
        case .bicubic:
            let a = -0.5, v = abs(x)
            if v < 1 { return ((a + 2) * v - (a + 3)) * v * v + 1 }
            if v < 2 { return (((v - 5) * v + 8) * v - 4) * a }
            return 0
        case .lanczos:
            guard -3 <= x && x < 3 else { return 0 }
            return Self.sinc(x) * Self.sinc(x / 3)
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let y = x * Double.pi
        return Foundation.sin(y) / y
    }
}

extension RGBImage {
    private static let precisionBits = 32 - 8 - 2

    /// Per output pixel: first input index, count, and fixed-point weights (Pillow's
    /// `precompute_coeffs` + `normalize_coeffs_8bpc`).
    private static func coefficients(inSize: Int, outSize: Int, filter: PillowResample)
        -> (bounds: [(Int, Int)], weights: [[Int32]])
    {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        var bounds: [(Int, Int)] = []
        var weights: [[Int32]] = []
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var k = [Double](repeating: 0, count: max(xmax, 0))
            var ww = 0.0
            for x in 0..<max(xmax, 0) {
                let w = filter.weight((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            if ww != 0 { for x in k.indices { k[x] /= ww } }
            let unit = Double(1 << precisionBits)
            weights.append(k.map { $0 < 0 ? Int32(-0.5 + $0 * unit) : Int32(0.5 + $0 * unit) })
            bounds.append((xmin, max(xmax, 0)))
        }
        return (bounds, weights)
    }

    @inline(__always)
    private static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s < 0 ? 0 : (s > 255 ? 255 : UInt8(s))
    }

    /// The image resized to `width`×`height` as Pillow's `resize((width, height), filter)` does.
    public func resized(width outW: Int, height outH: Int, filter: PillowResample) -> RGBImage {
        precondition(outW > 0 && outH > 0, "resize to an empty image")
        if outW == width && outH == height { return self }
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        let vert = Self.coefficients(inSize: height, outSize: outH, filter: filter)
        // Rows of the input the vertical pass will read.
        let firstRow = vert.bounds.first!.0
        let lastRow = vert.bounds.last!.0 + vert.bounds.last!.1
        var source = self
        var rowOffset = 0
        if outW != width {
            let horiz = Self.coefficients(inSize: width, outSize: outW, filter: filter)
            let rows = lastRow - firstRow
            var temp = [UInt8](repeating: 0, count: outW * rows * 3)
            for y in 0..<rows {
                let src = (y + firstRow) * width * 3
                for x in 0..<outW {
                    let (xmin, count) = horiz.bounds[x]
                    let k = horiz.weights[x]
                    var s0 = half, s1 = half, s2 = half
                    for i in 0..<count {
                        let p = src + (xmin + i) * 3
                        s0 += Int32(pixels[p]) * k[i]
                        s1 += Int32(pixels[p + 1]) * k[i]
                        s2 += Int32(pixels[p + 2]) * k[i]
                    }
                    let o = (y * outW + x) * 3
                    temp[o] = Self.clip8(s0)
                    temp[o + 1] = Self.clip8(s1)
                    temp[o + 2] = Self.clip8(s2)
                }
            }
            source = RGBImage(width: outW, height: rows, pixels: temp)
            rowOffset = firstRow
        }
        if outH == height && rowOffset == 0 && source.height == outH { return source }
        var out = [UInt8](repeating: 0, count: outW * outH * 3)
        for y in 0..<outH {
            let (ymin, count) = vert.bounds[y]
            let k = vert.weights[y]
            for x in 0..<outW {
                var s0 = half, s1 = half, s2 = half
                for i in 0..<count {
                    let p = ((ymin - rowOffset + i) * outW + x) * 3
                    s0 += Int32(source.pixels[p]) * k[i]
                    s1 += Int32(source.pixels[p + 1]) * k[i]
                    s2 += Int32(source.pixels[p + 2]) * k[i]
                }
                let o = (y * outW + x) * 3
                out[o] = Self.clip8(s0)
                out[o + 1] = Self.clip8(s1)
                out[o + 2] = Self.clip8(s2)
            }
        }
        return RGBImage(width: outW, height: outH, pixels: out)
    }
}
