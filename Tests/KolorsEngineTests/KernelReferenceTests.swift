import KolorsEngine
import Testing
import KolorsTestSupport

/// Every kernel against torch (Tests/Fixtures/references/kernels.safetensors, written by
/// scripts/fixtures/kernel_refs.py). Tolerance: max abs error ≤ 1e-5 × max |reference| unless
/// stated (float32 summation order differs from torch's).
@Suite("Kernels vs torch")
struct KernelReferenceTests {
    let refs: Fixtures.References
    let backend = Backends.float32

    init() throws { refs = try Fixtures.References("kernels.safetensors") }

    func check(_ got: Tensor, _ case_: String, tol: Double = 1e-5, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let want = try refs["\(case_).out"]
        #expect(got.shape.reduce(1, *) == want.count, "\(case_): shape \(got.shape) vs \(want.shape)", sourceLocation: sourceLocation)
        guard got.count == want.count else { return }
        let err = maxAbsError(got, want)
        let bound = tol * max(1, maxAbs(want))
        #expect(err <= bound, "\(case_): max abs error \(err) > \(bound)", sourceLocation: sourceLocation)
    }

    @Test func linear() throws {
        let x = try refs["linear.x"], w = try refs["linear.weight"], b = try refs["linear.bias"]
        try check(backend.linear(x, weight: Weight(w), bias: b), "linear")
        try check(backend.linear(x, weight: Weight(w), bias: nil), "linear_nobias")
    }

    @Test("linear with fp16 and bf16 weights left memory-mapped")
    func linearMappedHalf() throws {
        let dir = try TemporaryDirectory()
        let w = try refs["linear.weight"]
        let path = dir.path + "/w.safetensors"
        try SafetensorsWriter.write([("w16", w, .f16), ("wbf", w, .bf16)], to: path)
        let file = try SafetensorsFile(path: path)
        let x = try refs["linear.x"], b = try refs["linear.bias"]
        let openblas = OpenBLASBackend()
        openblas.mappedChunkBytes = 5 * 24 * 4  // chunks of 5 rows: several, the last one partial
        try check(openblas.linear(x, weight: Weight(mapped: try file.mapped("w16")), bias: b), "linear_f16")
        try check(openblas.linear(x, weight: Weight(mapped: try file.mapped("wbf")), bias: b), "linear_bf16")
    }

    @Test(arguments: [("conv3x3_s1p1", 1, Padding2D.symmetric(1)), ("conv3x3_s2p1", 2, .symmetric(1)),
                      ("conv1x1", 1, .none), ("conv3x3_s2_asym", 2, Padding2D(top: 0, left: 0, bottom: 1, right: 1)),
                      ("conv3x3_large", 1, .symmetric(1))])
    func conv2d(name: String, stride: Int, padding: Padding2D) throws {
        let x = try refs["\(name).x"], w = try refs["\(name).weight"], b = try refs["\(name).bias"]
        try check(backend.conv2d(x, weight: Weight(w), bias: b, stride: stride, padding: padding), name)
        // Row-blocked im2col must give the same result as one block.
        let small = OpenBLASBackend()
        small.im2colBudget = 4096
        small.winograd = false
        try check(small.conv2d(x, weight: Weight(w), bias: b, stride: stride, padding: padding), name)
    }

    /// 3×3 stride-1 convolutions run as Winograd F(4×4, 3×3) by default; each case is checked
    /// that way (in one block and in blocks of one tile row), with im2col, and against torch.
    /// Winograd's transforms add rounding: tolerance 2e-5 × max |reference| (measured 1.07e-5
    /// on the 256-channel case, where im2col gives 2.2e-6).
    @Test(arguments: ["conv3x3_s1p1", "conv3x3_large", "conv3x3_wide"])
    func winogradConv(name: String) throws {
        let x = try refs["\(name).x"], w = try refs["\(name).weight"], b = try refs["\(name).bias"]
        let rows = OpenBLASBackend()
        rows.winogradBudget = 1  // one tile row per block
        let im2col = OpenBLASBackend()
        im2col.winograd = false
        for backend in [OpenBLASBackend(), rows, im2col] {
            let tol = backend.winograd ? 2e-5 : 1e-5
            try check(backend.conv2d(x, weight: Weight(w), bias: b, stride: 1, padding: .symmetric(1)), name, tol: tol)
            let noBias = backend.conv2d(x, weight: Weight(w), bias: nil, stride: 1, padding: .symmetric(1))
            let perItem = (0..<x.shape[0]).flatMap { _ in (0..<b.count).map { b.pointer[$0] } }
            addPerChannel(noBias, Tensor(shape: [x.shape[0], b.count], values: perItem))
            try check(noBias, name, tol: tol)

        }
        // The Winograd result is not the im2col one by accident: they differ in rounding only.
        let a = OpenBLASBackend().conv2d(x, weight: Weight(w), bias: b, stride: 1, padding: .symmetric(1))
        let c = im2col.conv2d(x, weight: Weight(w), bias: b, stride: 1, padding: .symmetric(1))
        #expect(maxAbsError(a, c) > 0, "\(name): Winograd and im2col gave bit-identical output; is Winograd on?")
    }

    @Test("Winograd at edge sizes (1×1, 2×3, 5×1, 4×4, 9×4, batch 3) equals im2col")
    func winogradEdgeSizes() {
        let im2col = OpenBLASBackend()
        im2col.winograd = false
        let cin = 5, cout = 2  // few outputs, so even one tile takes the Winograd path
        let w = Tensor(shape: [cout, cin, 3, 3], values: (0..<(cout * cin * 9)).map { Float(($0 * 37) % 23) / 23 - 0.5 })
        let bias = Tensor(shape: [cout], values: [0.25, -1])
        for (b, h, wd) in [(1, 1, 1), (2, 2, 3), (1, 5, 1), (3, 4, 4), (1, 9, 4)] {
            let x = Tensor(shape: [b, cin, h, wd], values: (0..<(b * cin * h * wd)).map { Float(($0 * 11) % 17) / 8 - 1 })
            for up in [false, true] {
                let got = up ? OpenBLASBackend().conv2dUpsampled2x(x, weight: Weight(w), bias: bias, stride: 1, padding: .symmetric(1))
                             : OpenBLASBackend().conv2d(x, weight: Weight(w), bias: bias, stride: 1, padding: .symmetric(1))
                let want = up ? im2col.conv2dUpsampled2x(x, weight: Weight(w), bias: bias, stride: 1, padding: .symmetric(1))
                              : im2col.conv2d(x, weight: Weight(w), bias: bias, stride: 1, padding: .symmetric(1))
                #expect(got.shape == want.shape)
                #expect(maxAbsError(got, want) <= 1e-5 * max(1, maxAbs(want)), "\(b)×\(h)×\(wd) upsample \(up)")
            }
        }
    }

    @Test("Upsample2D's nearest-2× + conv3x3, fused (Winograd reads the small input) and not")
    func upsampledConv() throws {
        let x = try refs["upsample_conv.x"], w = try refs["upsample_conv.weight"], b = try refs["upsample_conv.bias"]
        let rows = OpenBLASBackend()
        rows.winogradBudget = 1
        let im2col = OpenBLASBackend()
        im2col.winograd = false
        for backend in [OpenBLASBackend(), rows, im2col] {
            try check(backend.conv2dUpsampled2x(x, weight: Weight(w), bias: b, stride: 1, padding: .symmetric(1)), "upsample_conv")
        }
    }

    @Test func norms() throws {
        let x = try refs["group_norm.x"], g = try refs["group_norm.weight"], b = try refs["group_norm.bias"]
        try check(groupNorm(x, groups: 4, weight: g, bias: b, eps: 1e-6), "group_norm")
        try check(groupNorm(x, groups: 4, weight: g, bias: b, eps: 1e-6, silu: true), "group_norm_silu")
        try check(layerNorm(try refs["layer_norm.x"], weight: try refs["layer_norm.weight"],
                            bias: try refs["layer_norm.bias"], eps: 1e-5), "layer_norm")
        try check(rmsNorm(try refs["rms_norm.x"], weight: try refs["rms_norm.weight"], eps: 1e-5), "rms_norm")
    }

    @Test func activations() throws {
        let x = try refs["silu.x"]
        try check(silu(x), "silu")
        try check(geluErf(x), "gelu")
        try check(geluTanh(x), "gelu_tanh")
        try check(quickGelu(x), "quick_gelu")
        try check(exp(try refs["exp.x"]), "exp", tol: 2e-6)
        try check(geglu(try refs["geglu.x"]), "geglu")
        try check(swiglu(try refs["swiglu.x"]), "swiglu")
        try check(softmax(try refs["softmax.x"]), "softmax")
    }

    @Test func layoutOps() throws {
        let x = try refs["upsample2x.x"]
        try check(upsampleNearest(x, height: 10, width: 14), "upsample2x", tol: 0)
        try check(upsampleNearest(x, height: 11, width: 13), "upsample_size", tol: 0)
        try check(upsampleNearest(try refs["upsample_size2.x"], height: 5, width: 10), "upsample_size2", tol: 0)
        try check(concat([try refs["concat.a"], try refs["concat.b"]], dim: 1), "concat", tol: 0)
        let table = Weight(try refs["embedding.table"])
        try check(embeddingLookup(table, ids: [7, 0, 49, 7, 13]), "embedding", tol: 0)
    }

    /// torch's vectorised float32 `exp` is within 1 ulp, not correctly rounded; one ulp of a
    /// frequency times t ≈ 1000 moves the angle by ~6e-5, so single entries can differ by that
    /// much (torch's own result carries the same float32 error). The whole vector must agree to
    /// a relative L2 error of 1e-5.
    @Test func timestepEmbeddings() throws {
        let t = try refs["timestep320.t"].values
        let ids = try refs["timestep256.t"].values
        let cases: [(Tensor, String)] = [
            (timestepEmbedding(t, dim: 320, flipSinToCos: true, downscaleFreqShift: 0), "timestep320"),
            (timestepEmbedding(ids, dim: 256, flipSinToCos: true, downscaleFreqShift: 0), "timestep256"),
            (timestepEmbedding(t, dim: 64, flipSinToCos: false, downscaleFreqShift: 1), "timestep_shift1"),
        ]
        for (got, name) in cases {
            let want = try refs["\(name).out"]
            #expect(got.shape == want.shape)
            #expect(relativeError(got, want) < 1e-5, "\(name): relative error \(relativeError(got, want))")
            #expect(maxAbsError(got, want) < 1e-4, "\(name): max abs error \(maxAbsError(got, want))")
        }
    }

    @Test func rotary() throws {
        let x = try refs["rotary.x"].copy()
        let positions = try refs["rotary.positions"].values.map { Int($0) }
        let (c, s) = rotaryTables(positions: positions, rotaryDim: 8)
        applyRotaryInterleaved(x, heads: 4, cos: c, sin: s)
        try check(x, "rotary")
    }

    @Test func attention() throws {
        let q = try refs["attention.q"], k = try refs["attention.k"], v = try refs["attention.v"]
        let scale = 1 / Float(8).squareRoot()
        try check(backend.attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, scale: scale, mask: nil), "attention")
        let mask = try refs["attention_mask.mask"]
        try check(backend.attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, scale: scale, mask: .perBatch(mask)),
                  "attention_mask")
        let shared = try refs["attention_shared_mask.mask"]
        try check(backend.attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, scale: scale, mask: .shared(shared)),
                  "attention_shared_mask")
        // Query chunking (2 query rows per chunk) gives the same result.
        let chunked = OpenBLASBackend()
        chunked.attentionScoreBudget = 2 * 9 * 4
        try check(chunked.attention(q: q, k: k, v: v, heads: 4, kvHeads: 2, scale: scale, mask: .perBatch(mask)),
                  "attention_mask")
    }

    @Test("attention memory is bounded: the UNet's 4096-token and the VAE's 16384-token attention")
    func attentionWorkspaceIsBounded() {
        let b = OpenBLASBackend()
        for (batch, heads, tokens) in [(2, 10, 4096), (1, 1, 16384), (2, 20, 1024)] {
            let (workers, chunk) = b.attentionWorkspace(batch: batch, heads: heads, queries: tokens, keys: tokens)
            let bytes = workers * chunk * tokens * 4
            let allScores = batch * heads * tokens * tokens * 4
            #expect(bytes <= workers * b.attentionScoreBudget, "\(bytes) bytes of scores")
            #expect(bytes * 16 <= allScores || tokens <= 1024, "\(tokens) tokens: \(bytes) of \(allScores) bytes at once")
        }
    }
}
