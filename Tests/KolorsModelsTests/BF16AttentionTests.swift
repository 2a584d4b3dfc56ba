import Foundation
import KolorsEngine
import Testing
import KolorsTestSupport

/// Attention in bf16 against torch's own bf16 `scaled_dot_product_attention` on the CPU (what
/// diffusers runs; references from scripts/fixtures/make_bf16_attention_refs.py): one block of
/// keys, three blocks of 512 with a tail, grouped heads with a causal + padding mask. Both the
/// float32-BLAS emulation and oneDNN's bf16 primitives (where the CPU has them) must round where
/// torch rounds (`BF16Attention`).
@Suite("bf16 attention rounds where torch does")
struct BF16AttentionTests {
    static let refs = try! Fixtures.References("bf16_attention.safetensors")

    struct Case: Sendable, CustomStringConvertible {
        let name: String, heads: Int, kvHeads: Int, masked: Bool
        var description: String { name }
    }
    static let cases = [Case(name: "cross", heads: 2, kvHeads: 2, masked: false),
                        Case(name: "blocks", heads: 1, kvHeads: 1, masked: false),
                        Case(name: "masked", heads: 4, kvHeads: 2, masked: true)]

    /// Share of elements whose bf16 rounding equals torch's bf16 output bit for bit.
    static func equalShare(_ ours: Tensor, _ torch: Tensor) -> Double {
        let r = roundedToBFloat16(ours)
        var same = 0
        for i in 0..<r.count where r.pointer[i] == torch.pointer[i] { same += 1 }
        return Double(same) / Double(r.count)
    }

    func run(_ backend: ComputeBackend, _ c: Case) throws -> Tensor {
        let r = Self.refs
        let q = try r["\(c.name).q"]
        let d = q.shape[2] / c.heads
        let mask = c.masked ? AttentionMask.perBatch(try r["\(c.name).mask"]) : nil
        return backend.attention(q: q, k: try r["\(c.name).k"], v: try r["\(c.name).v"], heads: c.heads, kvHeads: c.kvHeads,
                                 scale: 1 / Float(d).squareRoot(), mask: mask)
    }

    @Test(arguments: cases)
    func emulationAndOneDNN(_ c: Case) throws {
        let torchBF16 = try Self.refs["\(c.name).out"]
        var backends: [(String, ComputeBackend)] = [("emulated", OpenBLASBackend(bf16Operands: true))]
        if OneDNNCompute.bfloat16.isAvailable { backends.append(("oneDNN", OneDNNBackend(.bf16))) }
        // How far the float32 attention of the same bf16-valued inputs lies from torch's bf16.
        // Errors are taken after rounding our float32 output to bf16, as torch's output is.
        let fp32 = try run(Backends.float32, c)
        let fp32Error = relativeError(roundedToBFloat16(fp32), torchBF16), fp32Share = Self.equalShare(fp32, torchBF16)
        for (label, backend) in backends {
            let ours = try run(backend, c)
            let error = relativeError(roundedToBFloat16(ours), torchBF16), share = Self.equalShare(ours, torchBF16)
            print("bf16 attention \(c.name) \(label): vs torch bf16 \(error), equal bf16 \(share); float32 vs torch bf16 \(fp32Error), equal \(fp32Share)")
            // Measured: 0.46–1.12e-3 and 85–98 % equal; rounding the normalised probabilities
            // instead lands 2.9–3.2e-3 away, float32 1.4–2.3e-3 (52–74 % equal).
            #expect(error <= 1.25e-3, "\(label): \(error) from torch's bf16 attention")
            #expect(share >= 0.8, "\(label): only \(share) of the outputs equal torch's bf16")
            #expect(error <= 0.6 * fp32Error, "\(label): not much closer to torch's bf16 (\(error)) than float32 is (\(fp32Error))")
        }
        if backends.count == 2 {
            let apart = relativeError(try run(backends[1].1, c), try run(backends[0].1, c))
            // The two score products sum in different orders, so now and then an exponential
            // lands on the other side of a bf16 rounding boundary (~1e-5 of them); each such flip
            // moves one term of one row by 2⁻⁸. Measured 2e-8 (no flip) to 4.4e-6 (1100 keys).
            print("bf16 attention \(c.name): oneDNN vs emulated \(apart)")
            #expect(apart <= 5e-5, "oneDNN and the emulation round alike")
        }
    }
}

/// The bf16 self-check and the reasons given when bf16 does not run.
@Suite("bf16 self-check")
struct BF16SelfCheckTests {
    @Test("a reference that rounds attention elsewhere fails the self-check, and the reason says so")
    func mismatchNamesTheOperation() {
        // oneDNN in float32 against the bf16 emulation: linear and convolution agree exactly (the
        // check's operands are bf16 values), attention rounds its probabilities on one side only.
        let check = OneDNNCompute(.f32).selfCheck(against: OpenBLASBackend(bf16Operands: true))
        let reason = check.reason ?? ""
        #expect(reason.hasPrefix("f32 off: self-check attention "), "\(reason)")
        #expect(reason.hasSuffix(" > 1.0e-06"), "\(reason)")
        #expect(check.errors.map(\.operation) == ["linear", "convolution", "attention"])
        #expect(check.errors[0].error == 0 && check.errors[1].error == 0, "\(check.errors)")
        #expect(check.errors[2].error > 1e-4, "\(check.errors)")
        // and the matching reference passes, every operation exact or within its bound
        let good = OneDNNCompute(.f32).selfCheck(against: OpenBLASBackend())
        #expect(good.reason == nil, "\(good.reason ?? "")")
    }

    @Test("--precision auto picks bf16 exactly where the CPU has bf16 instructions; elsewhere the reason is named")
    func automaticPrecision() {
        let reason = OneDNNCompute.bfloat16.unavailableReason
        if OneDNNCompute.cpuHasBF16 {
            #expect(reason == nil, "bf16 off on a CPU with avx512_bf16/amx_bf16: \(reason ?? "")")
            #expect(ComputePrecision.automatic == .bf16)
            #expect((Backends.bfloat16 as! OneDNNBackend).usesOneDNN)
            #expect(Backends.bfloat16.name == "bf16-onednn")
        } else {
            print("skipped: this CPU has no avx512_bf16/amx_bf16, so --precision auto must be fp32")
            #expect(reason == "bf16 off: CPU lacks avx512_bf16/amx_bf16")
            #expect(ComputePrecision.automatic == .fp32)
        }
    }
}
