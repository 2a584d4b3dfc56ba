import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// The bf16 precision against diffusers run in torch.bfloat16 on the tiny checkpoint
/// (Tests/Fixtures/references/bf16.safetensors, scripts/fixtures/make_bf16_refs.py). diffusers'
/// bf16 lands a relative L2 error e_d = ‖bf16 − fp32‖/‖fp32‖ from its own float32 result
/// (UNet 2.2–2.5e-2, VAE 1.5e-2, ChatGLM 0.7e-2). Stated bounds, for each output:
///   • ours in bf16 is no further from the float32 reference than diffusers' bf16 is (≤ e_d),
///   • ours is close to diffusers' bf16 output itself (≤ 1.5 · e_d),
///   • and bf16 really happened: ours differs from float32 by ≥ 1e-4 (the fp32 path: ~1e-7).
/// Each bound holds on both bf16 paths: oneDNN's bf16 primitives (where the CPU has AVX512-BF16
/// or AMX) and the float32-BLAS emulation. Measured on a Zen 4, both paths: ours vs fp32
/// 0.55–0.68 · e_d (UNet 1.4–1.5e-2, VAE 0.9e-2, ChatGLM 0.4–0.5e-2 — we keep norms and the
/// residual stream in float32, diffusers' bf16 does not); ours vs diffusers' bf16 0.98–1.08 · e_d.
@Suite("bf16 precision parity")
struct BFloat16ParityTests {
    let bf16 = try! Fixtures.References("bf16.safetensors")

    /// Both ways bf16 runs: oneDNN's bf16 primitives (where the CPU has them) and the float32-BLAS
    /// emulation of the same rounding (everywhere).
    enum Path: String, CaseIterable, Sendable { case oneDNN, emulated }

    /// The backend for `path`, or nil (with a printed reason) where it cannot run here.
    static func backend(_ path: Path) -> ComputeBackend? {
        switch path {
        case .emulated: return OneDNNBackend(.bf16, useOneDNN: false)
        case .oneDNN:
            if let reason = OneDNNCompute.bfloat16.unavailableReason {
                print("skipped (oneDNN path): \(reason)")
                return nil
            }
            return OneDNNBackend(.bf16)
        }
    }

    func checkBounds(_ got: Tensor, fp32 want: Tensor, diffusersBF16 theirs: Tensor, _ name: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        let ed = relativeError(theirs, want)
        let ours = relativeError(got, want)
        let toTheirs = relativeError(got, theirs)
        print(String(format: "bf16 parity %@: e_d %.2e, ours vs fp32 %.2f·e_d, ours vs diffusers bf16 %.2f·e_d", name, ed, ours / ed, toTheirs / ed))
        #expect(ours <= ed, "\(name): ours vs fp32 \(ours) > diffusers bf16 vs fp32 \(ed)", sourceLocation: sourceLocation)
        #expect(toTheirs <= 1.5 * ed, "\(name): ours vs diffusers bf16 \(toTheirs) > 1.5 × \(ed)", sourceLocation: sourceLocation)
        #expect(ours >= 1e-4, "\(name): bf16 result within \(ours) of fp32 — was anything rounded?", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["t801", "t23"], Path.allCases)
    func unet(caseName: String, path: Path) throws {
        guard let backend = Self.backend(path) else { return }
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        let out = try unet(try refs["sample"], timesteps: [caseName == "t801" ? 801 : 23],
                           encoderHiddenStates: try refs["encoder_hidden_states"], textEmbeds: try refs["text_embeds"],
                           timeIds: try refs["time_ids"])
        checkBounds(out, fp32: try refs["\(caseName).out"], diffusersBF16: try bf16["unet.\(caseName).out"], "unet.\(caseName) \(path)")
    }

    @Test(arguments: Path.allCases)
    func vae(path: Path) throws {
        guard let backend = Self.backend(path) else { return }
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        checkBounds(try vae.decode(try refs["latents"]), fp32: try refs["decoded"], diffusersBF16: try bf16["vae.decoded"], "vae.decoded \(path)")
        checkBounds(try vae.encode(try refs["image"]).mean, fp32: try refs["mean"], diffusersBF16: try bf16["vae.mean"], "vae.mean \(path)")
    }

    @Test(arguments: Path.allCases)
    func textEncoder(path: Path) throws {
        guard let backend = Self.backend(path) else { return }
        let refs = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full, backend: backend)
        let enc = try encoder.encode(inputIds: try refs.ints("input_ids"), attentionMask: try refs.ints("attention_mask"),
                                     positionIds: try refs.ints("position_ids"))
        checkBounds(enc.promptEmbeds, fp32: try refs["prompt_embeds"], diffusersBF16: try bf16["text_encoder.prompt_embeds"], "prompt_embeds \(path)")
        checkBounds(enc.pooled, fp32: try refs["pooled"], diffusersBF16: try bf16["text_encoder.pooled"], "pooled \(path)")
    }
}

/// The pieces under the bf16 precision.
@Suite("bf16 arithmetic")
struct BFloat16ArithmeticTests {
    @Test("rounding to bf16 is round-to-nearest-even, as torch's .bfloat16()")
    func rounding() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even one (1).
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
        let x = Tensor(shape: [6], values: [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -2.5, .infinity, 3.0e38])
        let r = roundedToBFloat16(x)
        let want: [Float] = [1, 1 + 0x1p-6, 1 + 0x1p-7, -2.5, .infinity, 3.00405527047391e38]
        for i in 0..<6 { #expect(r.pointer[i] == want[i], "element \(i): \(r.pointer[i]) ≠ \(want[i])") }
        let nan = roundedToBFloat16(Tensor(shape: [1], values: [.nan]))
        #expect(nan.pointer[0].isNaN)
    }

    @Test("bf16-operand products equal float32 products of the rounded operands")
    func emulatedLinear() {
        let (m, k, n) = (7, 33, 5)
        let x = Tensor(shape: [m, k], values: (0..<(m * k)).map { Float(sin(Double($0) * 0.37)) })
        let w = Tensor(shape: [n, k], values: (0..<(n * k)).map { Float(cos(Double($0) * 0.11)) })
        let got = OpenBLASBackend(bf16Operands: true).linear(x, weight: Weight(w), bias: nil)
        let want = Backends.float32.linear(roundedToBFloat16(x), weight: Weight(roundedToBFloat16(w)), bias: nil)
        #expect(maxAbsError(got, want) <= 1e-5)
        #expect(maxAbsError(got, Backends.float32.linear(x, weight: Weight(w), bias: nil)) > 1e-4)
    }

    @Test("oneDNN bf16: used exactly where the CPU has bf16 instructions and it passes its self-check")
    func oneDNNAvailability() throws {
        let available = OneDNNCompute.bfloat16.isAvailable
        if !OneDNNCompute.cpuHasBF16 { #expect(!available, "oneDNN bf16 claimed available on a CPU without AVX512-BF16/AMX") }
        #expect((Backends.bfloat16 as! OneDNNBackend).usesOneDNN == available)
        #expect(ComputePrecision.automatic == (available ? .bf16 : .fp32))
        guard available else { return }  // the parity tests above then run on oneDNN's kernels
        let x = Tensor(shape: [9, 40], values: (0..<360).map { Float(sin(Double($0))) })
        let w = Tensor(shape: [12, 40], values: (0..<480).map { Float(cos(Double($0) * 0.3)) })
        let b = Tensor(shape: [12], values: (0..<12).map { Float($0) * 0.1 })
        let got = OneDNNBackend(.bf16).linear(x, weight: Weight(w), bias: b)
        let want = OneDNNBackend(.bf16, useOneDNN: false).linear(x, weight: Weight(w), bias: b)
        #expect(relativeError(got, want) <= 1e-5)
    }
}
