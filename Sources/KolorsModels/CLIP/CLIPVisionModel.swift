import Foundation
import KolorsEngine

/// Mirrors transformers' `CLIPVisionModelWithProjection` up to the hidden states IP-Adapter-Plus
/// uses: patch convolution (no bias) → class token + patches → position embeddings →
/// `pre_layrnorm` → pre-LN encoder layers. `callAsFunction` returns `hidden_states[k]`
/// (default k = −2, the penultimate layer's output, what diffusers' `encode_image` takes);
/// `post_layernorm` and `visual_projection` are not used. Only the layers needed for k are loaded.
public final class CLIPVisionModel: @unchecked Sendable {
    public let config: CLIPVisionConfig
    /// Which entry of transformers' `hidden_states` this model returns (0 = after pre_layrnorm).
    public let hiddenStatesIndex: Int
    let patchEmbedding: Conv2d
    let classEmbedding: Tensor
    let positionEmbedding: Tensor
    let preLayerNorm: LayerNorm
    let layers: [CLIPEncoderLayer]
    /// Stored tensors this model did not need (post_layernorm, visual_projection, later layers …).
    public let unusedWeights: [String]

    /// `hiddenStates`: an index into transformers' `hidden_states` (negative counts from the end,
    /// as in Python: −1 is the last layer's output).
    public init(config: CLIPVisionConfig, weights: WeightLoader, hiddenStates: Int = -2,
                backend: ComputeBackend = Backends.float32) throws {
        try config.validate()
        let count = config.numHiddenLayers + 1
        let index = hiddenStates < 0 ? count + hiddenStates : hiddenStates
        guard (0..<count).contains(index) else {
            throw UnsupportedConfiguration("image_encoder: hidden_states[\(hiddenStates)] does not exist (\(count) entries)")
        }
        self.config = config
        hiddenStatesIndex = index
        let prefix = weights.contains("vision_model.embeddings.class_embedding") ? "vision_model." : ""
        let w = weights.scope(prefix)
        let e = w.scope("embeddings")
        let d = config.hiddenSize
        patchEmbedding = try Conv2d(e.scope("patch_embedding"), in: config.numChannels, out: d, kernel: config.patchSize,
                                    stride: config.patchSize, padding: .none, bias: false, backend: backend)
        classEmbedding = try e.tensor("class_embedding", shape: [d])
        positionEmbedding = try e.tensor("position_embedding.weight", shape: [config.positions, d])
        preLayerNorm = try LayerNorm(w.scope("pre_layrnorm"), dim: d, eps: config.layerNormEps)
        layers = try (0..<index).map { try CLIPEncoderLayer(w.scope("encoder.layers.\($0)"), config: config, backend: backend) }
        unusedWeights = weights.unusedNames
    }

    /// Loads an `image_encoder/` folder: `config.json` and safetensors weights
    /// (`model.safetensors`, `model.fp16.safetensors` or a sharded index). PyTorch pickles
    /// (`pytorch_model.bin`) are refused.
    public static func load(directory: String, hiddenStates: Int = -2, residency: WeightResidency = .mapped,
                            backend: ComputeBackend = Backends.float32) throws -> CLIPVisionModel {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw CheckpointError("image encoder: \(directory) is not a folder (expected a CLIP image_encoder/ folder with config.json and model.safetensors)")
        }
        let config = try ConfigFile.decode(CLIPVisionConfig.self, path: directory + "/config.json", component: "image_encoder")
        let archive = try weightArchive(directory)
        let loader = WeightLoader(component: "image_encoder", archive: archive, residency: residency)
        return try CLIPVisionModel(config: config, weights: loader, hiddenStates: hiddenStates, backend: backend)
    }

    /// The safetensors weights of an image encoder folder.
    static func weightArchive(_ dir: String) throws -> SafetensorsArchive {
        let fm = FileManager.default
        for name in ["model.safetensors", "model.fp16.safetensors"] where fm.fileExists(atPath: dir + "/" + name) {
            return try SafetensorsArchive(paths: [dir + "/" + name])
        }
        for name in ["model.safetensors.index.json", "model.safetensors.index.fp16.json"] where fm.fileExists(atPath: dir + "/" + name) {
            return try SafetensorsArchive(index: dir + "/" + name)
        }
        let files = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        if let pickle = files.first(where: Pickles.isPickle) {
            throw CheckpointError(Pickles.refusal("image_encoder/\(pickle)",
                                                  instead: "a safetensors image encoder (model.safetensors; Kwai-Kolors/Kolors-IP-Adapter-Plus has one at revision refs/pr/4)"))
        }
        if let other = files.first(where: { $0.hasSuffix(".safetensors") }) {
            return try SafetensorsArchive(paths: [dir + "/" + other])
        }
        throw CheckpointError("image_encoder: no safetensors weights (model.safetensors) in \(dir)")
    }

    /// Embeddings and `pre_layrnorm`: transformers' `hidden_states[0]`, [B, 1 + patches, hidden].
    public func embed(_ pixels: Tensor) -> Tensor {
        precondition(pixels.rank == 4 && pixels.shape[1] == config.numChannels
                     && pixels.shape[2] == config.imageSize && pixels.shape[3] == config.imageSize,
                     "CLIP wants [B, \(config.numChannels), \(config.imageSize), \(config.imageSize)] pixels, got \(pixels.shape)")
        let b = pixels.shape[0], d = config.hiddenSize, n = config.positions
        let patches = nchwToTokens(patchEmbedding(pixels))  // [B, g², d]
        let x = Tensor(shape: [b, n, d], zeroed: false)
        let pc = classEmbedding.pointer, pp = positionEmbedding.pointer
        for i in 0..<b {
            let dst = x.pointer + i * n * d
            for c in 0..<d { dst[c] = pc[c] + pp[c] }
            let src = patches.pointer + i * (n - 1) * d
            for k in 0..<((n - 1) * d) { dst[d + k] = src[k] + pp[d + k] }
        }
        return preLayerNorm(x)
    }

    /// `hidden_states[hiddenStatesIndex]` for normalised pixels [B, 3, S, S] → [B, 1 + patches, hidden].
    public func callAsFunction(_ pixels: Tensor, cancel: CancellationToken? = nil) throws -> Tensor {
        var x = embed(pixels)
        for layer in layers {
            try cancel?.check()
            x = layer(x)
        }
        return x
    }
}
