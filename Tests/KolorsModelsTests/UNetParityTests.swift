import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// The UNet against diffusers (Tests/Fixtures/references/unet.safetensors): every block's
/// output and the final prediction, fp32 weights, relative L2 error ≤ 1e-4 (observed ~1e-7);
/// the fp16 variant within fp16 rounding (≤ 1e-3 of the fp32-weight reference run on the
/// same fp16 weights, i.e. ≤ 1e-4 against `out_from_fp16`).
@Suite("UNet2DConditionModel parity")
struct UNetParityTests {
    static let tolerance = 1e-4

    @Test(arguments: ["t801", "t23"])
    func forwardMatchesDiffusers(caseName: String) throws {
        let refs = try Fixtures.References("unet.safetensors")
        let model = try DiffusersModel(Fixtures.tinyKolors)
        let unet = try UNet2DConditionModel.load(from: model, variant: .full)
        #expect(unet.unusedWeights.isEmpty, "unused: \(unet.unusedWeights)")
        var seen: [String: Tensor] = [:]
        let t: Float = caseName == "t801" ? 801 : 23
        let out = try unet(try refs["sample"], timesteps: [t], encoderHiddenStates: try refs["encoder_hidden_states"],
                           textEmbeds: try refs["text_embeds"], timeIds: try refs["time_ids"],
                           probe: { name, tensor in seen[name] = tensor.copy() })
        // Bisect from the first block so a failure names where it starts.
        for name in ["emb", "down_blocks.0", "down_blocks.1", "down_blocks.2", "mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2"] {
            let got = try #require(seen[name], "no probe \(name)")
            let err = relativeError(got, try refs["\(caseName).\(name)"])
            #expect(err <= Self.tolerance, "\(caseName).\(name): relative error \(err)")
        }
        #expect(relativeError(try #require(seen["encoder_hid_proj"]), try refs["encoder_hid_proj"]) <= Self.tolerance)
        let err = relativeError(out, try refs["\(caseName).out"])
        #expect(err <= Self.tolerance, "\(caseName).out: relative error \(err)")
    }

    @Test("the fp16 variant loads and matches diffusers on the same fp16 weights")
    func fp16Variant() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .fp16)
        let out = try unet(try refs["sample"], timesteps: [801], encoderHiddenStates: try refs["encoder_hidden_states"],
                           textEmbeds: try refs["text_embeds"], timeIds: try refs["time_ids"])
        #expect(relativeError(out, try refs["t801.out_from_fp16"]) <= Self.tolerance)
        // and fp16 rounding of the weights moves the output only a little from the fp32 run
        #expect(relativeError(out, try refs["t801.out"]) <= 5e-3)
    }

    @Test("a cross-attention cache shared by a run's steps gives the same outputs; other conditioning starts it over")
    func crossAttentionCache() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let (sample, textEmbeds, timeIds) = (try refs["sample"], try refs["text_embeds"], try refs["time_ids"])
        let states = try refs["encoder_hidden_states"]
        func run(_ t: Float, _ states: Tensor, _ cache: CrossAttentionCache?) throws -> Tensor {
            try unet(sample, timesteps: [t], encoderHiddenStates: states, textEmbeds: textEmbeds, timeIds: timeIds,
                     crossAttentionCache: cache)
        }
        let cache = CrossAttentionCache()
        // Equal up to the order of parallel sums (which other tests running at once can change): ≤ 1e-5.
        let first = try run(801, states, cache)
        #expect(relativeError(first, try run(801, states, nil)) <= 1e-5)
        #expect(cache.count == unet.crossAttentionLayers.count)
        let bytes = cache.bytes
        #expect(bytes > 0)
        // the next step reads the kept K/V: same numbers as computing them, same reference error
        let second = try run(23, states, cache)
        #expect(relativeError(second, try run(23, states, nil)) <= 1e-5)
        #expect(relativeError(second, try refs["t23.out"]) <= Self.tolerance)
        #expect(cache.count == unet.crossAttentionLayers.count && cache.bytes == bytes)
        // other text embeddings: nothing stale is used
        let other = scale(states.copy(), 0.5)
        let fresh = try run(801, other, cache)
        #expect(relativeError(fresh, try run(801, other, nil)) <= 1e-5)
        #expect(relativeError(fresh, first) > 1e-3)
    }

    @Test("cancellation stops a forward pass between blocks")
    func cancellation() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let token = CancellationToken()
        token.cancel()
        #expect(throws: CancellationError.self) {
            _ = try unet(try refs["sample"], timesteps: [801], encoderHiddenStates: try refs["encoder_hidden_states"],
                         textEmbeds: try refs["text_embeds"], timeIds: try refs["time_ids"], cancel: token)
        }
    }
}

@Suite("Weights stay mapped")
struct MappedLoadingTests {
    @Test("loading the fp16 variant maps the weights instead of copying them")
    func unetMapsWeights() throws {
        let model = try DiffusersModel(Fixtures.tinyKolors)
        let archive = try model.weights("unet", variant: .fp16)
        let loader = WeightLoader(component: "unet", archive: archive, residency: .mapped)
        let unet = try UNet2DConditionModel(config: try model.config("unet", as: UNet2DConditionConfig.self), weights: loader)
        // Only biases and norm affines become float32; matrices and kernels stay in the file.
        #expect(loader.residentBytes < archive.dataBytes * 2 / 10,
                "\(loader.residentBytes) bytes of float32 copies for \(archive.dataBytes) bytes of fp16 weights")
        #expect(unet.encoderHidProj.map { $0.weight.residentFloat32 == nil } == true)
        let full = WeightLoader(component: "unet", archive: archive, residency: .float32)
        _ = try UNet2DConditionModel(config: try model.config("unet", as: UNet2DConditionConfig.self), weights: full)
        #expect(full.residentBytes == archive.dataBytes * 2)
    }
}
