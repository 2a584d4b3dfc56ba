import KolorsEngine
import KolorsModels
import Testing

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
