import COpenBLAS
import Testing

@Suite("OpenBLAS")
struct OpenBLASTests {
    @Test("sgemm matches a hand-computed product")
    func sgemmByHand() {
        // A (2×3) · B (3×2), row-major:
        // [1 2 3]   [ 7  8]   [ 58  64]
        // [4 5 6] · [ 9 10] = [139 154]
        //           [11 12]
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: -1, count: 4)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 3, 1, a, 3, b, 2, 0, &c, 2)
        #expect(c == [58, 64, 139, 154])

        // With Bᵀ stored (as Linear weights are) and alpha/beta.
        let bt: [Float] = [7, 9, 11, 8, 10, 12]
        var d: [Float] = [1, 1, 1, 1]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 2, 2, 3, 0.5, a, 3, bt, 3, 2, &d, 2)
        #expect(d == [31, 34, 71.5, 79])
    }

    @Test("a larger sgemm agrees with a naive loop")
    func sgemmLarge() {
        let m = 37, n = 53, k = 71
        var rng = SplitMix(seed: 1)
        let a = (0..<(m * k)).map { _ in rng.nextFloat() }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() }
        var c = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        var maxErr: Double = 0
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                maxErr = max(maxErr, abs(s - Double(c[i * n + j])))
            }
        }
        #expect(maxErr < 1e-4)
        #expect(openblas_get_num_threads() >= 1)
    }
}

/// A small deterministic generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
