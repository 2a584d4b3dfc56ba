import Foundation
import KolorsEngine

/// A port of `torch.Generator("cpu").manual_seed(seed)` with `torch.randn` (float32), so a
/// seed gives the same starting noise as diffusers on the CPU.
///
/// For n ≥ 16 elements torch draws n 24-bit uniforms, turns each block of 16 into normals with
/// Box–Muller (first 8 as radii, last 8 as angles), and for a tail (n mod 16 ≠ 0) draws 16
/// fresh uniforms and recomputes the last 16 outputs. Below 16 elements it uses its scalar
/// double-precision path, which caches the second Box–Muller value in the generator.
public struct TorchGenerator: Sendable {
    private var engine: MT19937
    private var cachedNormal: Double?
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        engine = MT19937(seed: seed)
    }

    /// A float uniform in [0, 1) from one 32-bit draw (24 random bits).
    mutating func uniformFloat() -> Float {
        Float(engine.next() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// A double uniform in [0, 1) from two 32-bit draws (53 random bits).
    mutating func uniformDouble() -> Double {
        let hi = UInt64(engine.next()), lo = UInt64(engine.next())
        let v = (hi << 32) | lo
        return Double(v & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Box–Muller on 16 uniforms in place (torch's `normal_fill_16`).
    private static func fill16(_ d: UnsafeMutablePointer<Float>) {
        for j in 0..<8 {
            let u1 = 1 - d[j]
            let u2 = d[j + 8]
            let radius = (-2 * Foundation.log(Double(u1))).squareRoot()
            let theta = 2.0 * Double.pi * Double(u2)
            d[j] = Float(radius * Foundation.cos(theta))
            d[j + 8] = Float(radius * Foundation.sin(theta))
        }
    }

    /// `torch.randn(shape, generator=self)` in float32.
    public mutating func randn(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        let t = Tensor(shape: shape, zeroed: false)
        let d = t.pointer
        if n >= 16 {
            for i in 0..<n { d[i] = uniformFloat() }
            var i = 0
            while i + 16 <= n {
                TorchGenerator.fill16(d + i)
                i += 16
            }
            if n % 16 != 0 {
                let tail = d + (n - 16)
                for k in 0..<16 { tail[k] = uniformFloat() }
                TorchGenerator.fill16(tail)
            }
        } else {
            for i in 0..<n { d[i] = Float(normalDouble()) }
        }
        return t
    }

    /// torch's scalar `normal_distribution<double>` (used for tensors under 16 elements).
    mutating func normalDouble() -> Double {
        if let c = cachedNormal {
            cachedNormal = nil
            return c
        }
        let u1 = uniformDouble()
        let u2 = uniformDouble()
        let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = r * Foundation.sin(theta)
        return r * Foundation.cos(theta)
    }
}
