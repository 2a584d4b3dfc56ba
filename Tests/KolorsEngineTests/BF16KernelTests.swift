import CKolorsKernels
import Foundation
import KolorsEngine
import Testing
import KolorsTestSupport

/// The pieces bf16 speed rests on, held to the emulation they must equal.
@Suite("bf16 kernels")
struct BF16KernelTests {
    static func random(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(s >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }

    @Test("the scalar exp equals every lane of the vectorised one, bit for bit")
    func expTwins() {
        let x = Self.random(1 << 16, seed: 1, scale: 95) + [0, -0.0, -87.3365, -87.34, -200, -.infinity, 88, 1e-8]
        var vector = [Float](repeating: 0, count: x.count)
        let n = x.count / 8 * 8  // whole vectors only: kk_exp's tail goes through a padded vector too
        kk_exp(x, &vector, n)
        var differ = 0
        for i in 0..<n where kk_exp_scalar(x[i]).bitPattern != vector[i].bitPattern { differ += 1 }
        #expect(differ == 0, "\(differ) of \(n) exponentials differ")
    }

    @Test("float32 → bf16 bits: round to nearest even, NaN kept quiet, on the vector path and the tail")
    func conversion() {
        let specials: [Float] = [1 + 0x1p-8, 1 + 3 * 0x1p-8, -2.5, .infinity, -.infinity, .nan, 3.0e38, 1e-40, -0.0]
        let x = specials + Self.random(997, seed: 2, scale: 1e4) + specials
        var bits = [UInt16](repeating: 0, count: x.count)
        kk_f32_to_bf16(x, &bits, x.count)
        for (i, v) in x.enumerated() {
            let u = v.bitPattern
            let want: UInt16 = v.isNaN ? UInt16(u >> 16) | 0x40 : UInt16((u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
            #expect(bits[i] == want, "\(v): \(bits[i]) ≠ \(want)")
        }
    }

    /// The fused attention against the float32-BLAS emulation on random (not exactly summable)
    /// operands: ≤ 5e-5 (probability flips at bf16 rounding boundaries; see BF16AttentionTests).
    @Test("fused AVX512-BF16 attention equals the emulation on odd shapes", .enabled(if: kk_has_avx512_bf16() != 0),
          arguments: [(70, 1030, 40, 3, 3, false), (5, 3, 6, 4, 2, true), (130, 77, 7, 2, 1, true), (64, 512, 64, 2, 2, false),
                      (1, 1, 2, 1, 1, false)])
    func fusedAttention(_ c: (lq: Int, lk: Int, d: Int, heads: Int, kvHeads: Int, masked: Bool)) {
        let b = 2
        let q = Tensor(shape: [b, c.lq, c.heads * c.d], values: Self.random(b * c.lq * c.heads * c.d, seed: 3, scale: 2))
        let k = Tensor(shape: [b, c.lk, c.kvHeads * c.d], values: Self.random(b * c.lk * c.kvHeads * c.d, seed: 4, scale: 2))
        let v = Tensor(shape: [b, c.lk, c.kvHeads * c.d], values: Self.random(b * c.lk * c.kvHeads * c.d, seed: 5))
        // causal with the first key hidden from item 1 (rows keep at least their own key)
        let mask: AttentionMask? = c.masked ? .perBatch(Tensor(shape: [b, c.lq, c.lk], values: (0..<(b * c.lq * c.lk)).map { i in
            let (bi, r, j) = (i / (c.lq * c.lk), i / c.lk % c.lq, i % c.lk)
            return j > r || (bi == 1 && j == 0 && r > 0) ? -.infinity : 0
        })) : nil
        let scale = 1 / Float(c.d).squareRoot()
        let fused = OneDNNCompute.fusedBF16Attention(q: q, k: k, v: v, shape: AttentionShape(q: q, k: k, v: v, heads: c.heads,
                                                     kvHeads: c.kvHeads, mask: mask), scale: scale, mask: mask)
        let emulated = OpenBLASBackend(bf16Operands: true).attention(q: q, k: k, v: v, heads: c.heads, kvHeads: c.kvHeads,
                                                                    scale: scale, mask: mask)
        let error = relativeError(fused, emulated)
        #expect(error <= 5e-5, "fused vs emulated \(error)")
        let fp32 = Backends.float32.attention(q: q, k: k, v: v, heads: c.heads, kvHeads: c.kvHeads, scale: scale, mask: mask)
        if c.lk > 1 { #expect(relativeError(fused, fp32) > 1e-4, "no bf16 rounding happened") }
    }

    @Test("oneDNN bf16 linear and convolution round activations as the emulation does", .enabled(if: OneDNNCompute.bfloat16.isAvailable))
    func linearAndConvolution() throws {
        let onednn = OneDNNCompute.bfloat16, emulated = OpenBLASBackend(bf16Operands: true)
        emulated.winograd = false
        let x = Tensor(shape: [37, 300], values: Self.random(37 * 300, seed: 6, scale: 3))
        let w = Weight(Tensor(shape: [65, 300], values: Self.random(65 * 300, seed: 7)))
        #expect(relativeError(try onednn.linear(x, weight: w, bias: nil), emulated.linear(x, weight: w, bias: nil)) <= 1e-5)
        let xc = Tensor(shape: [2, 32, 20, 20], values: Self.random(2 * 32 * 400, seed: 8, scale: 3))
        let wc = Weight(Tensor(shape: [48, 32, 3, 3], values: Self.random(48 * 32 * 9, seed: 9)))
        let got = try onednn.conv2d(xc, weight: wc, bias: nil, stride: 1, padding: .symmetric(1))
        #expect(relativeError(got, emulated.conv2d(xc, weight: wc, bias: nil, stride: 1, padding: .symmetric(1))) <= 1e-5)
    }
}

@Suite("tensor buffer pool")
struct BufferPoolTests {
    @Test("a freed large buffer serves the next tensor of its size; small ones are not kept; drain frees all")
    func reuse() {
        let pool = TensorStorage.pool
        pool.drain()
        let count = (pool.minimumBytes / 4) * 3
        var address: UnsafeMutablePointer<Float>?
        do {
            let t = Tensor(shape: [count], zeroed: false)
            address = t.pointer
        }
        #expect(pool.heldBytes == count * 4)
        let again = Tensor(shape: [count], zeroed: true)
        #expect(again.pointer == address, "the kept buffer was not reused")
        #expect(pool.heldBytes == 0)
        #expect((0..<count).allSatisfy { again.pointer[$0] == 0 }, "zeroed: true must still zero a reused buffer")
        do { _ = Tensor(shape: [16], zeroed: false) }
        #expect(pool.heldBytes == 0, "small buffers go straight back to malloc")
        do { _ = Tensor(shape: [count + 1], zeroed: false) }
        #expect(pool.heldBytes == (count + 1) * 4)
        pool.drain()
        #expect(pool.heldBytes == 0)
        #expect(pool.capacityBytes >= pool.minimumBytes)
    }
}
