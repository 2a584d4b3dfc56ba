import Foundation
import KolorsEngine
import KolorsModels
import Testing
import KolorsTestSupport

/// Spellings found in the wild load to the same model: ChatGLM keys with the `transformer.`
/// prefix (ChatGLMForConditionalGeneration checkpoints), VAE attention under the old
/// `query/key/value/proj_attn` names stored as 1×1 convolutions.
@Suite("Checkpoint spellings")
struct CheckpointVariantsTests {
    /// Copies the tiny checkpoint with one component's tensors renamed/reshaped.
    func rewrite(_ component: String, file: String, to dir: String,
                 _ transform: (String, Tensor) -> (String, Tensor)) throws -> DiffusersModel {
        let fm = FileManager.default
        try fm.copyItem(atPath: Fixtures.tinyKolors, toPath: dir + "/m")
        let path = dir + "/m/\(component)/\(file)"
        let src = try SafetensorsFile(path: path)
        var entries: [(name: String, tensor: Tensor, dtype: DType)] = []
        for name in src.names {
            let (n, t) = transform(name, try src.mapped(name).toFloat32())
            entries.append((n, t, .f32))
        }
        try fm.removeItem(atPath: path)
        try SafetensorsWriter.write(entries, to: path)
        return try DiffusersModel(dir + "/m")
    }

    @Test("ChatGLM weights with a transformer. prefix load and encode identically")
    func chatGLMPrefix() throws {
        let dir = try TemporaryDirectory()
        let model = try rewrite("text_encoder", file: "model.safetensors", to: dir.path) { ("transformer." + $0, $1) }
        let refs = try Fixtures.References("text_encoder.safetensors")
        let encoder = try ChatGLMModel.load(from: model, variant: .full)
        #expect(encoder.unusedWeights.isEmpty)
        let enc = try encoder.encode(inputIds: try refs.ints("input_ids"), attentionMask: try refs.ints("attention_mask"),
                                     positionIds: try refs.ints("position_ids"))
        #expect(relativeError(enc.promptEmbeds, try refs["prompt_embeds"]) <= 1e-4)
    }

    @Test("VAE attention under old names, stored [C, C, 1, 1], decodes identically")
    func vaeOldAttentionNames() throws {
        let dir = try TemporaryDirectory()
        let renames = [".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."]
        let model = try rewrite("vae", file: "diffusion_pytorch_model.safetensors", to: dir.path) { name, t in
            guard name.contains(".attentions."), let (new, old) = renames.first(where: { name.contains($0.key) }) else { return (name, t) }
            let renamed = name.replacingOccurrences(of: new, with: old)
            return (renamed, t.rank == 2 ? t.reshaped(t.shape + [1, 1]) : t)
        }
        let file = try SafetensorsFile(path: dir.path + "/m/vae/diffusion_pytorch_model.safetensors")
        #expect(file.names.contains("decoder.mid_block.attentions.0.query.weight"))
        #expect(file.info("decoder.mid_block.attentions.0.query.weight")?.shape.count == 4)
        let refs = try Fixtures.References("vae.safetensors")
        let vae = try AutoencoderKL.load(from: model, variant: .full)
        #expect(vae.unusedWeights.isEmpty, "\(vae.unusedWeights)")
        #expect(relativeError(try vae.decode(try refs["latents"]), try refs["decoded"]) <= 1e-4)
    }
}
