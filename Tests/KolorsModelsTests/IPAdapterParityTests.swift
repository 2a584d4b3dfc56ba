import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// IP-Adapter-Plus (resampler and decoupled cross-attention) against diffusers
/// (Tests/Fixtures/references/ip_lora.safetensors).
@Suite("IP-Adapter-Plus parity")
struct IPAdapterParityTests {
    static let folder = Fixtures.path("ip-adapter-plus")

    @Test("original Kolors names load, with to_kv split; hyper-parameters come from the weights")
    func loads() throws {
        let ip = try IPAdapterWeights.load(Self.folder)
        #expect(ip.path.hasSuffix("ip_adapter_plus_general.safetensors"))
        let p = ip.projection
        #expect((p.embedDims, p.hiddenDims, p.outputDims, p.numQueries, p.heads) == (32, 24, 32, 4, 2))
        #expect(ip.layers.map(\.key) == stride(from: 1, through: 33, by: 2).map(String.init))
        #expect(IPAdapterWeights.originalName("layers.3.ln0.weight") == "layers.3.0.norm1.weight")
        #expect(IPAdapterWeights.originalName("layers.0.ff.1.net.2.weight") == "layers.0.1.3.weight")
        #expect(IPAdapterWeights.originalName("layers.1.attn.to_out.0.weight") == "layers.1.0.to_out.weight")
        #expect(IPAdapterWeights.defaultImageEncoderDirectory(for: Self.folder) == Self.folder + "/image_encoder")
        #expect(IPAdapterWeights.defaultImageEncoderDirectory(for: ip.path) == Self.folder + "/image_encoder")
    }

    @Test("resampler output on [zero-image; image] embeds", arguments: ["ip_image_90x70.png", "ip_image_50x77.png"])
    func resampler(_ name: String) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let ip = try IPAdapterWeights.load(Self.folder)
        let x = concat([try refs["clip.zero_image_embeds"], try refs["clip.\(name).image_embeds"]], dim: 0)
        let err = relativeError(ip.projection(x), try refs["resampler.\(name).out"])
        #expect(err <= 1e-4, "\(name): \(err)")
    }

    @Test("UNet with the IP branch at scale 1.0 and 0.5; processors ordered down → up → mid", arguments: [Float(1.0), 0.5])
    func unet(scale: Float) throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let u = try Fixtures.References("unet.safetensors")
        let unet = try UNet2DConditionModel.load(from: try DiffusersModel(Fixtures.tinyKolors), variant: .full)
        let names = unet.crossAttentionLayers.map(\.name)
        #expect(names.first == "down_blocks.1.attentions.0.transformer_blocks.0.attn2")
        #expect(names.last == "mid_block.attentions.0.transformer_blocks.1.attn2")
        #expect(names.firstIndex { $0.hasPrefix("up_blocks") }! < names.firstIndex { $0.hasPrefix("mid_block") }!)
        let ip = try IPAdapterWeights.load(Self.folder)
        try unet.checkIPAdapter(ip)
        #expect(unet.crossAttentionLayers.allSatisfy { $0.name == $0.attention.path })
        let embeds = concat([try refs["clip.zero_image_embeds"], try refs["clip.ip_image_90x70.png.image_embeds"]], dim: 0)
        let tokens = ip.projection(embeds)
        let out = try unet(try u["sample"], timesteps: [801], encoderHiddenStates: try u["encoder_hidden_states"],
                           textEmbeds: try u["text_embeds"], timeIds: try u["time_ids"], imageTokens: tokens, ipAdapter: ip,
                           imageScale: scale)
        let err = relativeError(out, try refs["unet_ip.scale\(scale).t801.out"])
        #expect(err <= 1e-4, "scale \(scale): \(err)")
        // prepared once for several steps: the same output, text and image K/V kept per layer
        let conditioning = try unet.prepare(text: try u["encoder_hidden_states"], textEmbeds: try u["text_embeds"],
                                            timeIds: try u["time_ids"], imageTokens: tokens, ipAdapter: ip, imageScale: scale)
        for _ in 0..<2 {
            #expect(relativeError(try unet(try u["sample"], timesteps: [801], conditioning: conditioning), out) <= 1e-5)
        }
        #expect(conditioning.pairs == (scale == 0 ? 1 : 2) * names.count)
        // scale 0 and no adapter give the plain UNet
        let plain = try unet(try u["sample"], timesteps: [801], encoderHiddenStates: try u["encoder_hidden_states"],
                             textEmbeds: try u["text_embeds"], timeIds: try u["time_ids"], imageTokens: tokens, ipAdapter: ip,
                             imageScale: 0)
        #expect(relativeError(plain, try u["t801.out"]) <= 1e-4)
    }

    @Test("an fp16 file (like Kolors' own) stays mapped, to_kv halves included, and matches within fp16 rounding")
    func fp16() throws {
        let refs = try Fixtures.References("ip_lora.safetensors")
        let src = try SafetensorsFile(path: Self.folder + "/ip_adapter_plus_general.safetensors")
        let dir = try TemporaryFolder()
        let path = dir.path + "/ip_adapter_plus_general.safetensors"
        try SafetensorsWriter.write(try src.names.map { ($0, try src.mapped($0).toFloat32(), DType.f16) }, to: path)
        let ip = try IPAdapterWeights.load(dir.path)
        #expect(ip.layers.allSatisfy { $0.toK.weight.residentFloat32 == nil })
        let x = concat([try refs["clip.zero_image_embeds"], try refs["clip.ip_image_90x70.png.image_embeds"]], dim: 0)
        let err = relativeError(ip.projection(x), try refs["resampler.ip_image_90x70.png.out"])
        #expect(err <= 5e-3, "fp16: \(err)")
    }

    @Test("pickles and files that are not IP-Adapter-Plus are refused with clear messages")
    func refusals() throws {
        let dir = try TemporaryFolder()
        _ = FileManager.default.createFile(atPath: dir.path + "/ip_adapter_plus_general.bin", contents: Data([0x80, 0x02]))
        #expect(throws: CheckpointError.self) { _ = try IPAdapterWeights.load(dir.path) }
        do { _ = try IPAdapterWeights.load(dir.path) } catch let e as CheckpointError {
            #expect(e.message.contains("ip_adapter_plus_general.bin is a PyTorch pickle"), "\(e.message)")
        }
        do { _ = try IPAdapterWeights.load(dir.path + "/ip_adapter_plus_general.bin") } catch let e as CheckpointError {
            #expect(e.message.contains("is a PyTorch pickle"), "\(e.message)")
        }
        do {
            _ = try IPAdapterWeights.load(Fixtures.path("tiny-kolors/unet/diffusion_pytorch_model.safetensors"))
            Issue.record("loaded a UNet as an IP-Adapter")
        } catch let e as CheckpointError {
            #expect(e.message.contains("no image_proj.* and ip_adapter.* tensors"), "\(e.message)")
        }
    }
}
