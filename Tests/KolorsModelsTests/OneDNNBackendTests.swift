import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// The oneDNN backend (`OneDNNCompute`: matmul, convolution and attention primitives, weights
/// prepared once in the primitive's layout, bias and residual as post-ops). bf16 needs AVX512-BF16/AMX,
/// which the development machine lacks, so its code path is checked here in float32: the same
/// primitives, preparation and post-ops with the data type f32, against OpenBLAS (≤ 1e-5) and
/// against diffusers on the tiny checkpoint at the float32 parity tolerance (≤ 1e-4).
@Suite("oneDNN primitives (float32)")
struct OneDNNComputeTests {
    let compute = OneDNNCompute.float32
    let reference: OpenBLASBackend = {
        let b = OpenBLASBackend()
        b.winograd = false
        return b
    }()

    static func values(_ n: Int, _ f: Double) -> [Float] { (0..<n).map { Float(sin(Double($0) * f + 0.3)) } }

    @Test("float32 oneDNN runs here and passes its self-check")
    func available() {
        #expect(compute.isAvailable)
        #expect((Backends.oneDNNFloat32 as! OneDNNBackend).usesOneDNN)
        #expect(Backends.oneDNNFloat32.name == "f32-onednn")
    }

    /// `compute.linear` against OpenBLAS at 1, 13 and 200 rows: without bias, with bias, and
    /// with bias and a fused residual (which must really have been added).
    func checkLinear(_ compute: OneDNNCompute, weight w: Weight, bias: Tensor,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (n, k) = (w.shape[0], w.shape[1])
        for m in [1, 13, 200] {
            let x = Tensor(shape: [m, k], values: Self.values(m * k, 0.11))
            let residual = Tensor(shape: [m, n], values: Self.values(m * n, 0.05))
            let plain = relativeError(try compute.linear(x, weight: w, bias: nil), reference.linear(x, weight: w, bias: nil))
            #expect(plain <= 1e-5, "m=\(m)", sourceLocation: sourceLocation)
            let biased = relativeError(try compute.linear(x, weight: w, bias: bias), reference.linear(x, weight: w, bias: bias))
            #expect(biased <= 1e-5, "m=\(m)", sourceLocation: sourceLocation)
            let fused = try compute.linear(x, weight: w, bias: bias, residual: residual)
            let separate = add(reference.linear(x, weight: w, bias: bias), residual)
            #expect(relativeError(fused, separate) <= 1e-5, "m=\(m)", sourceLocation: sourceLocation)
            #expect(relativeError(fused, reference.linear(x, weight: w, bias: bias)) > 1e-2, "residual ignored",
                    sourceLocation: sourceLocation)
        }
    }

    @Test("linear: bias, residual, several row counts on one prepared weight")
    func linear() throws {
        let (k, n) = (70, 45)
        let w = Weight(Tensor(shape: [n, k], values: Self.values(n * k, 0.7)))
        let bias = Tensor(shape: [n], values: Self.values(n, 1.3))
        try checkLinear(compute, weight: w, bias: bias)
        // prepared once: a float32 copy in the primitive's layout, kept on the weight
        #expect(w.preparedBytes >= n * k * 4)
        let before = w.preparedBytes
        _ = try compute.linear(Tensor(shape: [3, k], values: Self.values(3 * k, 0.2)), weight: w, bias: nil)
        #expect(w.preparedBytes == before)
        // a weight used once per run (the text encoder's) drops its prepared form with its pages
        w.releasePages()
        #expect(w.preparedBytes == 0)
        let x = Tensor(shape: [4, k], values: Self.values(4 * k, 0.9))
        #expect(relativeError(try compute.linear(x, weight: w, bias: bias), reference.linear(x, weight: w, bias: bias)) <= 1e-5)
    }

    @Test("the primitive cache is bounded: least recently used shapes are destroyed and rebuilt when needed")
    func primitiveCacheBound() throws {
        let small = OneDNNCompute(.f32, primitiveCapacity: 3)
        #expect(small.isAvailable)  // the self-check itself builds four primitives
        #expect(small.cachedPrimitives <= 3)
        let (k, n) = (24, 10)
        let w = Weight(Tensor(shape: [n, k], values: Self.values(n * k, 0.4)))
        for round in 0..<2 {
            for m in 1...6 {  // six shapes through a cache of three, twice
                let x = Tensor(shape: [m, k], values: Self.values(m * k, 0.1 + Double(round)))
                #expect(relativeError(try small.linear(x, weight: w, bias: nil), reference.linear(x, weight: w, bias: nil)) <= 1e-5)
                #expect(small.cachedPrimitives <= 3)
            }
        }
        // attention needs its two primitives at once, both inside the bound
        let q = Tensor(shape: [1, 5, 8], values: Self.values(40, 0.3)), kv = Tensor(shape: [1, 7, 8], values: Self.values(56, 0.8))
        let got = try small.attention(q: q, k: kv, v: kv, heads: 2, kvHeads: 2, scale: 0.5, mask: nil)
        #expect(relativeError(got, reference.attention(q: q, k: kv, v: kv, heads: 2, kvHeads: 2, scale: 0.5, mask: nil)) <= 1e-5)
        #expect(small.cachedPrimitives == 3)
        // the shared instances keep a roomy default
        #expect(OneDNNCompute.float32.primitiveCapacity >= 256)
    }

    @Test("weights used once per run and int8 weights: streamed block by block, nothing kept", arguments: [false, true])
    func streamedLinear(int8: Bool) throws {
        let streaming = OneDNNCompute(.f32)
        streaming.streamBlockBytes = 16 * 70 * 4  // 16 rows a block: 45 rows → blocks of 16, 16, 13
        let (k, n) = (70, 45)
        let plain = Weight(Tensor(shape: [n, k], values: Self.values(n * k, 0.7)), usedOncePerRun: !int8)
        let w = int8 ? plain.quantizedInt8() : plain
        let bias = Tensor(shape: [n], values: Self.values(n, 1.3))
        let calls = streaming.streamedLinearCalls
        try checkLinear(streaming, weight: w, bias: bias)
        #expect(streaming.streamedLinearCalls - calls == 9)
        #expect(w.preparedBytes == 0)
        // the backend sends int8 linear layers to oneDNN too (no fallback)
        let backend = OneDNNBackend(.f32)
        let x = Tensor(shape: [5, k], values: Self.values(5 * k, 0.6))
        #expect(relativeError(backend.linear(x, weight: w, bias: bias), reference.linear(x, weight: w, bias: bias)) <= 1e-5)
        #expect(backend.fallbacks.count == 0)
    }

    @Test("linear on mapped fp16 weights (the checkpoint's storage)")
    func mappedWeights() throws {
        let archive = try DiffusersModel(Fixtures.tinyKolors).weights("unet", variant: .fp16)
        let loader = WeightLoader(component: "unet", archive: archive, residency: .mapped)
        let name = "down_blocks.1.attentions.0.transformer_blocks.0.ff.net.2.weight"
        let shape = try archive.mapped(name).shape
        let w = try loader.weight(name, shape: shape)
        guard case .mapped = w.storage else { Issue.record("weight not mapped"); return }
        let x = Tensor(shape: [17, shape[1]], values: Self.values(17 * shape[1], 0.3))
        #expect(relativeError(try compute.linear(x, weight: w, bias: nil), reference.linear(x, weight: w, bias: nil)) <= 1e-5)
    }

    @Test("convolution: strides, asymmetric padding, 1×1, with and without bias", arguments: [
        (stride: 1, pad: Padding2D.symmetric(1), kernel: 3),
        (stride: 2, pad: Padding2D(top: 0, left: 0, bottom: 1, right: 1), kernel: 3),
        (stride: 1, pad: Padding2D.none, kernel: 1),
    ])
    func conv(stride: Int, pad: Padding2D, kernel: Int) throws {
        let (b, cin, cout, h, wd) = (2, 6, 5, 9, 7)
        let x = Tensor(shape: [b, cin, h, wd], values: Self.values(b * cin * h * wd, 0.37))
        let w = Weight(Tensor(shape: [cout, cin, kernel, kernel], values: Self.values(cout * cin * kernel * kernel, 0.9)))
        let bias = Tensor(shape: [cout], values: Self.values(cout, 2.1))
        for bb in [nil, bias] {
            let got = try compute.conv2d(x, weight: w, bias: bb, stride: stride, padding: pad)
            let want = reference.conv2d(x, weight: w, bias: bb, stride: stride, padding: pad)
            #expect(got.shape == want.shape)
            #expect(relativeError(got, want) <= 1e-5, "bias \(bb != nil)")
        }
        #expect(w.preparedBytes >= cout * cin * kernel * kernel * 4)
    }

    @Test("attention: self and cross, grouped heads, masks with -inf, several query chunks", arguments: [
        (heads: 3, kvHeads: 3, lq: 37, lk: 37, masked: false, budget: 64 << 20),
        (heads: 3, kvHeads: 3, lq: 37, lk: 11, masked: false, budget: 3 * 11 * 4 * 5),  // 5 query rows per chunk
        (heads: 4, kvHeads: 2, lq: 19, lk: 19, masked: true, budget: 4 * 19 * 4 * 7),
        (heads: 4, kvHeads: 1, lq: 1, lk: 9, masked: true, budget: 64 << 20),
    ])
    func attention(heads: Int, kvHeads: Int, lq: Int, lk: Int, masked: Bool, budget: Int) throws {
        let (b, d) = (2, 8)
        let q = Tensor(shape: [b, lq, heads * d], values: Self.values(b * lq * heads * d, 0.31))
        let k = Tensor(shape: [b, lk, kvHeads * d], values: Self.values(b * lk * kvHeads * d, 0.17))
        let v = Tensor(shape: [b, lk, kvHeads * d], values: Self.values(b * lk * kvHeads * d, 0.53))
        var mask: AttentionMask?
        if masked {
            // per batch: causal, and batch item 1 also hides its first two keys (left padding);
            // the diagonal stays visible so no row is fully masked
            let m = Tensor(shape: [b, lq, lk], zeroed: true)
            for bi in 0..<b {
                for i in 0..<lq {
                    for j in 0..<lk where j > i + (lk - lq) || (bi == 1 && j < 2 && j != i + (lk - lq)) {
                        m.pointer[(bi * lq + i) * lk + j] = -.infinity
                    }
                }
            }
            mask = .perBatch(m)
        }
        let scale = 1 / Float(d).squareRoot()
        let got = try compute.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask,
                                        scoreBudget: budget)
        let want = reference.attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, mask: mask)
        #expect(got.shape == want.shape)
        #expect(relativeError(got, want) <= 1e-5, "\(relativeError(got, want))")
        #expect(!(0..<got.count).contains { got.pointer[$0].isNaN })
    }

    @Test("OpenBLAS: the residual as GEMM's starting C equals a separate add")
    func openBLASResidual() {
        let (m, k, n) = (9, 31, 12)
        let x = Tensor(shape: [m, k], values: Self.values(m * k, 0.4))
        let w = Weight(Tensor(shape: [n, k], values: Self.values(n * k, 0.8)))
        let r = Tensor(shape: [m, n], values: Self.values(m * n, 0.6))
        for bias in [nil, Tensor(shape: [n], values: Self.values(n, 0.2))] {
            let fused = reference.linear(x, weight: w, bias: bias, residual: r)
            #expect(maxAbsError(fused, add(reference.linear(x, weight: w, bias: bias), r)) <= 1e-5)
        }
    }
}

/// Whole models on `Backends.oneDNNFloat32` against diffusers: the tolerance of the float32
/// parity suites (relative L2 ≤ 1e-4).
@Suite("oneDNN backend parity (float32)")
struct OneDNNParityTests {
    let backend = Backends.oneDNNFloat32
    static let tolerance = 1e-4

    @Test(arguments: ["t801", "t23"])
    func unet(caseName: String) throws {
        #expect((backend as! OneDNNBackend).usesOneDNN)
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        let out = try unet(try refs["sample"], timesteps: [caseName == "t801" ? 801 : 23],
                           encoderHiddenStates: try refs["encoder_hidden_states"], textEmbeds: try refs["text_embeds"],
                           timeIds: try refs["time_ids"])
        let err = relativeError(out, try refs["\(caseName).out"])
        #expect(err <= Self.tolerance, "unet.\(caseName): \(err)")
        noFallbacks()
    }

    /// Every linear, conv and attention ran on oneDNN (none fell back to OpenBLAS).
    func noFallbacks(sourceLocation: SourceLocation = #_sourceLocation) {
        let f = (backend as! OneDNNBackend).fallbacks
        #expect(f.count == 0, "oneDNN fell back \(f.count) times; last: \(f.last ?? "")", sourceLocation: sourceLocation)
    }

    @Test func vae() throws {
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        let decoded = relativeError(try vae.decode(try refs["latents"]), try refs["decoded"])
        #expect(decoded <= Self.tolerance, "decoded: \(decoded)")
        let mean = relativeError(try vae.encode(try refs["image"]).mean, try refs["mean"])
        #expect(mean <= Self.tolerance, "mean: \(mean)")
        noFallbacks()
    }

    /// The text encoder's weights run once per prompt: streamed block by block (4 matrices per
    /// layer), never kept.
    @Test func textEncoder() throws {
        let refs = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        let streamed = OneDNNCompute.float32.streamedLinearCalls
        let enc = try encoder.encode(inputIds: try refs.ints("input_ids"), attentionMask: try refs.ints("attention_mask"),
                                     positionIds: try refs.ints("position_ids"))
        #expect(relativeError(enc.promptEmbeds, try refs["prompt_embeds"]) <= Self.tolerance)
        #expect(relativeError(enc.pooled, try refs["pooled"]) <= Self.tolerance)
        #expect(OneDNNCompute.float32.streamedLinearCalls - streamed >= 4 * encoder.config.numLayers)
        noFallbacks()
    }

    /// Weight-only int8 on oneDNN (dequantized block by block) against diffusers with the same
    /// int8 weights, at the bound the OpenBLAS int8 test uses.
    @Test func textEncoderInt8() throws {
        let refs = try Fixtures.References("text_encoder_int8.safetensors")
        let tokens = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .fp16, precision: .int8,
                                            backend: backend)
        let enc = try encoder.encode(inputIds: try tokens.ints("input_ids"), attentionMask: try tokens.ints("attention_mask"),
                                     positionIds: try tokens.ints("position_ids"))
        #expect(relativeError(enc.promptEmbeds, try refs["prompt_embeds"]) <= Self.tolerance)
        #expect(relativeError(enc.pooled, try refs["pooled"]) <= Self.tolerance)
        noFallbacks()
    }
}
