import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// LoRA files in the three formats, merged into the tiny UNet, against diffusers + PEFT
/// (Tests/Fixtures/references/ip_lora.safetensors / .json).
@Suite("LoRA")
struct LoRATests {
    static let files = ["peft": "peft_lora.safetensors", "old": "old_diffusers_lora.safetensors",
                        "kohya": "kohya_lora.safetensors", "kohya_sgm": "kohya_sgm_lora.safetensors"]

    static func unetConfig() throws -> UNet2DConditionConfig {
        try DiffusersModel(Fixtures.tinyKolors).config("unet", as: UNet2DConditionConfig.self)
    }

    static func load(_ key: String) throws -> LoRAFile {
        try LoRAFile(path: Fixtures.path("loras/\(files[key]!)"), unetConfig: try unetConfig())
    }

    @Test("ranks and α/r per layer equal what PEFT ended up with", arguments: ["peft", "old", "kohya"])
    func scalings(_ key: String) throws {
        let lora = try Self.load(key)
        let manifest = try Fixtures.manifest("ip_lora.json")
        let scalings = try #require(manifest["lora_scalings"] as? [String: [String: Any]])
        let want = scalings.filter { $0.key.hasPrefix(key + ":") }
        #expect(lora.modules.count == want.count)
        for m in lora.modules {
            let w = try #require(want["\(key):\(m.path)"], "\(m.path) not targeted by diffusers")
            let r = (w["r"] as? NSNumber)?.intValue, alpha = (w["lora_alpha"] as? NSNumber)?.floatValue
            #expect(m.rank == r && m.alpha == alpha, "\(m.path): r \(m.rank) α \(m.alpha), diffusers r \(r ?? -1) α \(alpha ?? -1)")
            #expect(m.scale == m.alpha / Float(m.rank))
        }
    }

    @Test("formats are recognised; SGM block names map to the same layers as diffusers names")
    func formats() throws {
        #expect(try Self.load("peft").format == .peft)
        #expect(try Self.load("old").format == .oldDiffusers)
        #expect(try Self.load("kohya").format == .kohya)
        let sgm = try Self.load("kohya_sgm"), kohya = try Self.load("kohya")
        #expect(sgm.format == .kohyaSGM)
        #expect(sgm.modules.map(\.path) == kohya.modules.map(\.path))
        #expect(sgm.modules.map(\.scale) == kohya.modules.map(\.scale))
        // diffusers' kohya key conversion
        #expect(LoRAFile.convertKohyaKey("lora_unet_mid_block_resnets_0_time_emb_proj.lora_down.weight")
                == "mid_block.resnets.0.time_emb_proj.lora.down.weight")
        #expect(LoRAFile.convertKohyaKey("lora_unet_up_blocks_0_attentions_2_transformer_blocks_0_attn1_to_out_0.lora_down.weight")
                == "up_blocks.0.attentions.2.transformer_blocks.0.attn1.processor.to_out_lora.down.weight")
        #expect(LoRAFile.moduleOfOldKey("unet.down_blocks.2.attentions.1.transformer_blocks.1.attn1.processor.to_out_lora.down.weight")
                == "down_blocks.2.attentions.1.transformer_blocks.1.attn1.to_out.0")
    }

    @Test("the UNet with each LoRA merged equals diffusers' PEFT layers", arguments: ["peft", "old", "kohya"])
    func unet(_ key: String) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let u = try Fixtures.References("unet.safetensors")
        let model = try DiffusersModel(Fixtures.tinyKolors)
        // the adapter weights of the reference runs (lora-old: set_adapters(["old"], [0.8]))
        let weight: Float = key == "old" ? 0.8 : 1
        let unet = try UNet2DConditionModel.load(from: model, variant: .full, loras: [(try Self.load(key), weight)])
        #expect(unet.unusedWeights.isEmpty)
        let out = try unet(try u["sample"], timesteps: [801], encoderHiddenStates: try u["encoder_hidden_states"],
                           textEmbeds: try u["text_embeds"], timeIds: try u["time_ids"])
        let err = relativeError(out, try refs["unet_lora-\(key).t801.out"])
        #expect(err <= 1e-4, "\(key): \(err)")
        // the fp16 checkpoint (mapped) gets float32 merged copies of the targeted layers only
        let archive = try model.weights("unet", variant: .fp16)
        let merged = try LoRAMerger.mergedWeights([(try Self.load(key), 1)], into: archive, component: "unet",
                                                  backend: Backends.float32)
        #expect(Set(merged.keys) == Set(try Self.load(key).modules.map { $0.path + ".weight" }))
        #expect(merged.values.allSatisfy { $0.residentFloat32 != nil })
    }

    @Test("unknown keys are reported by name")
    func unknownKeys() throws {
        let dir = try TemporaryFolder()
        let path = dir.path + "/odd.safetensors"
        try SafetensorsWriter.write([
            ("unet.down_blocks.1.attentions.0.proj_in.lora_A.weight", Tensor.zeros([2, 16]), .f32),
            ("unet.down_blocks.1.attentions.0.proj_in.lora_B.weight", Tensor.zeros([16, 2]), .f32),
            ("unet.down_blocks.1.attentions.0.proj_in.lora_magnitude_vector", Tensor.zeros([16]), .f32),
        ], to: path)
        do {
            _ = try LoRAFile(path: path)
            Issue.record("accepted a DoRA key")
        } catch let e as LoRAError {
            #expect(e.message == "LoRA odd.safetensors (diffusers/PEFT): 1 keys are not LoRA weights this engine understands (DoRA, LoKr, biases and other adapters are not supported): unet.down_blocks.1.attentions.0.proj_in.lora_magnitude_vector")
        }
        try SafetensorsWriter.write([("model.diffusion_model.input_blocks.1.weight", Tensor.zeros([2]), .f32)], to: path)
        #expect(throws: LoRAError.self) { _ = try LoRAFile(path: path) }
    }

    @Test("layers that do not exist or do not fit are reported together")
    func mismatchedLayers() throws {
        let dir = try TemporaryFolder()
        let path = dir.path + "/other.safetensors"
        try SafetensorsWriter.write([
            ("unet.down_blocks.9.attentions.0.proj_in.lora_A.weight", Tensor.zeros([2, 16]), .f32),
            ("unet.down_blocks.9.attentions.0.proj_in.lora_B.weight", Tensor.zeros([16, 2]), .f32),
            ("unet.mid_block.attentions.0.proj_in.lora_A.weight", Tensor.zeros([2, 64]), .f32),
            ("unet.mid_block.attentions.0.proj_in.lora_B.weight", Tensor.zeros([64, 2]), .f32),
            ("unet.up_blocks.1.attentions.2.proj_in.lora_A.weight", Tensor.zeros([2, 16]), .f32),
            ("unet.up_blocks.1.attentions.2.proj_in.lora_B.weight", Tensor.zeros([16, 2]), .f32),
        ], to: path)
        let lora = try LoRAFile(path: path)
        let archive = try DiffusersModel(Fixtures.tinyKolors).weights("unet", variant: .full)
        do {
            _ = try LoRAMerger.mergedWeights([(lora, 1)], into: archive, component: "unet", backend: Backends.float32)
            Issue.record("merged a LoRA for another UNet")
        } catch let e as LoRAError {
            #expect(e.message == "LoRA other.safetensors: 2 of its 3 layers do not fit this unet: down_blocks.9.attentions.0.proj_in: no such layer in the unet, mid_block.attentions.0.proj_in: the LoRA has down [2, 64] and up [64, 2], but the layer's weight is [24, 24]")
        }
    }

    @Test("pickles are refused; text-encoder keys are set aside")
    func pickleAndTextEncoder() throws {
        do {
            _ = try LoRAFile(path: "/tmp/pytorch_lora_weights.bin")
            Issue.record("accepted a pickle")
        } catch let e as LoRAError {
            #expect(e.message.contains("pytorch_lora_weights.bin is a PyTorch pickle"))
        }
        let dir = try TemporaryFolder()
        let path = dir.path + "/te.safetensors"
        try SafetensorsWriter.write([
            ("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight", Tensor.zeros([2, 24]), .f32),
            ("lora_unet_mid_block_attentions_0_proj_in.lora_up.weight", Tensor.zeros([24, 2]), .f32),
            ("lora_te_encoder_layers_0_self_attn_q_proj.lora_down.weight", Tensor.zeros([2, 8]), .f32),
            ("lora_te_encoder_layers_0_self_attn_q_proj.lora_up.weight", Tensor.zeros([8, 2]), .f32),
        ], to: path)
        let lora = try LoRAFile(path: path)
        #expect(lora.modules.map(\.path) == ["mid_block.attentions.0.proj_in"])
        #expect(lora.ignoredKeys.count == 2)
        #expect(lora.modules[0].scale == 1)  // no .alpha: α = r
    }
}
