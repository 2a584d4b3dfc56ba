import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// ChatGLM3 (tiny) against diffusers (Tests/Fixtures/references/text_encoder.safetensors):
/// every hidden state, prompt embeds (hidden_states[-2], pad rows included) and pooled output,
/// from the reference token tables; relative L2 ≤ 1e-4.
@Suite("ChatGLM encoder parity")
struct ChatGLMParityTests {
    static let tolerance = 1e-4

    func run(variant: WeightVariant, residency: WeightResidency) throws -> (TextEncoding, [String: Tensor]) {
        let refs = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: variant, residency: residency)
        #expect(encoder.unusedWeights.isEmpty, "unused: \(encoder.unusedWeights)")
        var seen: [String: Tensor] = [:]
        let enc = try encoder.encode(inputIds: try refs.ints("input_ids"), attentionMask: try refs.ints("attention_mask"),
                                     positionIds: try refs.ints("position_ids"), probe: { seen[$0] = $1.copy() })
        return (enc, seen)
    }

    @Test(arguments: [WeightResidency.float32, .mapped])
    func encodeMatchesDiffusers(residency: WeightResidency) throws {
        let refs = try Fixtures.References("text_encoder.safetensors")
        let (enc, seen) = try run(variant: .full, residency: residency)
        let h1 = relativeError(try #require(seen["hidden_states.1"]), try refs["hidden_states.1"])
        #expect(h1 <= Self.tolerance, "hidden_states.1: \(h1)")
        let h3 = relativeError(try #require(seen["hidden_states.3"]), try refs["hidden_states.3"])
        #expect(h3 <= Self.tolerance, "hidden_states.3: \(h3)")
        let pe = relativeError(enc.promptEmbeds, try refs["prompt_embeds"])
        #expect(pe <= Self.tolerance, "prompt_embeds: \(pe)")
        let pooled = relativeError(enc.pooled, try refs["pooled"])
        #expect(pooled <= Self.tolerance, "pooled: \(pooled)")
    }

    @Test("the sharded fp16 variant stays mapped and matches diffusers on the same weights")
    func fp16Sharded() throws {
        let refs = try Fixtures.References("text_encoder.safetensors")
        let (enc, _) = try run(variant: .fp16, residency: .mapped)
        let want16 = try refs["prompt_embeds_from_fp16"], want32 = try refs["prompt_embeds"]
        let e16 = relativeError(enc.promptEmbeds, want16), e32 = relativeError(enc.promptEmbeds, want32)
        #expect(e16 <= Self.tolerance, "prompt_embeds_from_fp16: \(e16) (vs the fp32 reference: \(e32))")
        #expect(relativeError(enc.pooled, try refs["pooled_from_fp16"]) <= Self.tolerance)
    }
}

extension WeightResidency: CustomTestStringConvertible {
    public var testDescription: String { self == .float32 ? "float32" : "mapped" }
}

/// Weight-only int8 (ChatGLM3's quantize(8)) against a diffusers run with the same quantized
/// weights (Tests/Fixtures/references/text_encoder_int8.safetensors).
@Suite("ChatGLM int8")
struct ChatGLMInt8Tests {
    @Test("per-row int8 quantization equals torch's, bit for bit")
    func quantizer() throws {
        let refs = try Fixtures.References("text_encoder_int8.safetensors")
        let model = try DiffusersModel(Fixtures.tinyKolors)
        let archive = try model.weights("text_encoder", variant: .fp16)
        for name in ["self_attention.query_key_value.weight", "mlp.dense_4h_to_h.weight"] {
            let full = "encoder.layers.0.\(name)"
            let q = Int8Matrix(quantizing: Weight(mapped: try archive.mapped(full)))
            let wantQ = try refs["\(full).int8"], wantS = try refs["\(full).scale"]
            #expect(q.scales.values == wantS.values, "\(name): scales")
            let got = (0..<(q.rows * q.cols)).map { Float(q.data[$0]) }
            #expect(got == wantQ.values, "\(name): int8 values")
        }
    }

    @Test("encodes like diffusers with the same int8 weights; error vs fp32 stays small")
    func encode() throws {
        let refs = try Fixtures.References("text_encoder_int8.safetensors")
        let fp32 = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .fp16, precision: .int8)
        let enc = try encoder.encode(inputIds: try fp32.ints("input_ids"), attentionMask: try fp32.ints("attention_mask"),
                                     positionIds: try fp32.ints("position_ids"))
        let e = relativeError(enc.promptEmbeds, try refs["prompt_embeds"])
        #expect(e <= 1e-4, "prompt embeds vs the int8 reference: \(e)")
        #expect(relativeError(enc.pooled, try refs["pooled"]) <= 1e-4)
        // The price of int8 on the tiny model (hidden 48): about 1e-2 relative.
        let cost = relativeError(enc.promptEmbeds, try fp32["prompt_embeds"])
        #expect(cost < 3e-2, "int8 embedding error vs fp32: \(cost)")
    }

    @Test("quantized weights are cached on disk, then mapped, with identical results")
    func cache() throws {
        let dir = try TemporaryDirectory()
        let fp32 = try Fixtures.References("text_encoder.safetensors")
        let model = try DiffusersModel(Fixtures.tinyKolors)
        func run() throws -> Tensor {
            let e = try ChatGLMModel.load(from: model, variant: .fp16, precision: .int8, cacheDirectory: dir.path)
            return try e.encode(inputIds: try fp32.ints("input_ids"), attentionMask: try fp32.ints("attention_mask"),
                                positionIds: try fp32.ints("position_ids")).promptEmbeds
        }
        let first = try run()
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/int8")
        #expect(files.count == 1 && files[0].hasPrefix("text_encoder-") && files[0].hasSuffix(".safetensors"))
        let cacheFile = try SafetensorsFile(path: dir.path + "/int8/" + files[0])
        #expect(cacheFile.info("encoder.layers.0.mlp.dense_h_to_4h.weight")?.dtype == .i8)
        // Same weights, so the same result up to BLAS summation order (threads vary while other
        // tests run in parallel).
        #expect(relativeError(try run(), first) <= 1e-6)
        // A damaged cache is ignored (quantized again), never trusted.
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir.path + "/int8/" + files[0]))
        #expect(relativeError(try run(), first) <= 1e-6)
    }
}

/// bf16 weights cached on disk (`--text-encoder-precision bf16`).
@Suite("ChatGLM bf16 weight cache")
struct ChatGLMBF16CacheTests {
    @Test("written once, then mapped as bf16; on bf16 compute the same result as the fp16 weights (the same rounding)")
    func cache() throws {
        let dir = try TemporaryDirectory()
        let fp32 = try Fixtures.References("text_encoder.safetensors")
        let model = try DiffusersModel(Fixtures.tinyKolors)
        func run(_ precision: TextEncoderPrecision, _ backend: ComputeBackend) throws -> Tensor {
            let e = try ChatGLMModel.load(from: model, variant: .fp16, precision: precision, cacheDirectory: dir.path, backend: backend)
            return try e.encode(inputIds: try fp32.ints("input_ids"), attentionMask: try fp32.ints("attention_mask"),
                                positionIds: try fp32.ints("position_ids")).promptEmbeds
        }
        let bf16 = OneDNNBackend(.bf16)
        let cached = try run(.bf16, bf16)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/bf16")
        #expect(files.count == 1 && files[0].hasPrefix("text_encoder-"))
        let path = dir.path + "/bf16/" + files[0]
        let file = try SafetensorsFile(path: path)
        #expect(file.info("encoder.layers.0.self_attention.query_key_value.weight")?.dtype == .bf16)
        let written = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        // fp16 → bf16 rounds the same whether done once into the cache or per product: equal up
        // to the order of float32 sums.
        #expect(relativeError(cached, try run(.fp16, bf16)) <= 1e-5)
        #expect(relativeError(try run(.bf16, bf16), cached) <= 1e-6)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date == written, "rewritten")
        // in float32 the cached weights are the bf16-rounded ones: close to fp16, not equal
        let rounded = try run(.bf16, Backends.float32), exact = try run(.fp16, Backends.float32)
        let e = relativeError(rounded, exact)
        #expect(e > 1e-6 && e < 2e-2, "bf16-rounded weights in float32: \(e)")
    }
}

/// EXPERIMENTAL W8A8 text encoder: the embedding error it causes on the tiny model.
@Suite("ChatGLM int8-w8a8 (experimental)", .enabled(if: W8A8Backend.isAvailable))
struct ChatGLMW8A8Tests {
    @Test("encodes with a reported, bounded error against float32")
    func embeddingError() throws {
        let fp32 = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .fp16, precision: .int8W8A8)
        let enc = try encoder.encode(inputIds: try fp32.ints("input_ids"), attentionMask: try fp32.ints("attention_mask"),
                                     positionIds: try fp32.ints("position_ids"))
        let e = relativeError(enc.promptEmbeds, try fp32["prompt_embeds"])
        let p = relativeError(enc.pooled, try fp32["pooled"])
        print("int8-w8a8 on the tiny model: prompt embeds relative error \(e), pooled \(p)")
        #expect(e < 0.1 && p < 0.1)
    }
}
