import KolorsEngine
import KolorsTestSupport
import Testing

/// The experimental int8 path: oneDNN's u8 × s8 products must be exact for 7-bit activations,
/// and a W8A8 linear layer must stay close to float32.
@Suite("W8A8 on oneDNN", .enabled(if: W8A8Backend.isAvailable))
struct W8A8Tests {
    @Test("u8 (0…127) × s8 products are exact in s32")
    func exactIntegerProducts() throws {
        let (m, n, k) = (37, 53, 300)
        var rng = SystemRandomNumberGenerator()
        let a = (0..<(m * k)).map { _ in UInt8.random(in: 0...127, using: &rng) }
        let b = (0..<(n * k)).map { _ in Int8.random(in: -127...127, using: &rng) }
        var c = [Int32](repeating: 0, count: m * n)
        try c.withUnsafeMutableBufferPointer { cp in
            try OneDNNInt8GEMM.shared.multiply(a: a, b: b, c: cp.baseAddress!, m: m, n: n, k: k)
        }
        var mismatches = 0
        for i in 0..<m {
            for j in 0..<n {
                var s: Int32 = 0
                for p in 0..<k { s += Int32(a[i * k + p]) * Int32(b[j * k + p]) }
                if s != c[i * n + j] { mismatches += 1 }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("a W8A8 linear layer stays within a few percent of float32")
    func linearError() {
        var rng = SystemRandomNumberGenerator()
        let x = Tensor(shape: [5, 64, 96], values: (0..<(5 * 64 * 96)).map { _ in Float.random(in: -2...2, using: &rng) })
        let w = Tensor(shape: [80, 96], values: (0..<(80 * 96)).map { _ in Float.random(in: -0.2...0.2, using: &rng) })
        let bias = Tensor(shape: [80], values: (0..<80).map { _ in Float.random(in: -1...1, using: &rng) })
        let exact = Backends.float32.linear(x, weight: Weight(w), bias: bias)
        let weightOnly = Backends.float32.linear(x, weight: Weight(w).quantizedInt8(), bias: bias)
        let w8a8 = W8A8Backend().linear(x, weight: Weight(w).quantizedInt8(), bias: bias)
        let eWeights = relativeError(weightOnly, exact), eBoth = relativeError(w8a8, exact)
        print("W8A8 linear: relative error \(eBoth) (weights only: \(eWeights))")
        #expect(eWeights < 1e-2)
        #expect(eBoth < 3e-2)
    }
}
