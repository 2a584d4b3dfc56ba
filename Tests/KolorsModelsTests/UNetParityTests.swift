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

    @Test("one prepared conditioning serves a run's steps with the same outputs as preparing it per call")
    func preparedConditioning() throws {
        let refs = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let (sample, textEmbeds, timeIds) = (try refs["sample"], try refs["text_embeds"], try refs["time_ids"])
        let states = try refs["encoder_hidden_states"]
        let conditioning = try unet.prepare(text: states, textEmbeds: textEmbeds, timeIds: timeIds)
        #expect(conditioning.pairs == unet.crossAttentionLayers.count && conditioning.bytes > 0)
        func oneShot(_ t: Float, _ states: Tensor) throws -> Tensor {
            try unet(sample, timesteps: [t], encoderHiddenStates: states, textEmbeds: textEmbeds, timeIds: timeIds)
        }
        // Equal up to the order of parallel sums (which other tests running at once can change): ≤ 1e-5.
        for (t, name) in [(Float(801), "t801"), (23, "t23")] {
            let stepped = try unet(sample, timesteps: [t], conditioning: conditioning)
            #expect(relativeError(stepped, try oneShot(t, states)) <= 1e-5)
            #expect(relativeError(stepped, try refs["\(name).out"]) <= Self.tolerance)
        }
        // other text embeddings make other conditioning: nothing is shared by accident
        let other = try unet.prepare(text: scale(states.copy(), 0.5), textEmbeds: textEmbeds, timeIds: timeIds)
        let fresh = try unet(sample, timesteps: [801], conditioning: other)
        #expect(relativeError(fresh, try unet(sample, timesteps: [801], conditioning: conditioning)) > 1e-3)
        // and bad shapes are an error, not a trap
        #expect(throws: GenerationShapeError.self) { try unet.prepare(text: states, textEmbeds: textEmbeds, timeIds: nil) }
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
