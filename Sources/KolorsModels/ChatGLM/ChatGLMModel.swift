import Foundation
import KolorsEngine

/// What Kolors takes from the text encoder for a batch of prompts.
public struct TextEncoding: Sendable {
    /// `hidden_states[-2]`: the input of the last GLM layer, [B, 256, hidden], pad rows included.
    public let promptEmbeds: Tensor
    /// The last position of the last layer's output (before the final norm), [B, hidden].
    public let pooled: Tensor
}

/// How the text encoder keeps its large matrices.
public enum TextEncoderPrecision: String, Sendable, CaseIterable {
    /// As stored (fp16 for Kolors), memory-mapped and converted per block: exact.
    case fp16
    /// Weight-only int8 with per-row scales (ChatGLM3's `quantize(8)`): half the memory;
    /// relative error of the embeddings ~1e-2 on the tiny test model.
    case int8
    /// EXPERIMENTAL: int8 weights and 7-bit per-token activations, integer products on oneDNN
    /// (`W8A8Backend`): faster, less accurate (the tests report the error).
    case int8W8A8 = "int8-w8a8"
    /// The matrices rounded to bf16 once and cached on disk (`BF16WeightCache`, 12.4 GB), mapped
    /// from then on: with `--precision bf16` the products read them directly, no per-prompt
    /// conversion. The rounding is the one bf16 compute makes anyway.
    case bf16

    /// Whether the weights are int8.
    public var isInt8: Bool { self != .fp16 }
}

/// Mirrors diffusers' vendored `ChatGLMModel` (ChatGLM3-6B) as `KolorsPipeline.encode_prompt`
/// uses it. Large matrices stay memory-mapped in their stored dtype and are converted block by
/// block inside each matrix product, so the 6B model runs in a few GiB; `output_layer` and the
/// final norm are never loaded.
public final class ChatGLMModel: @unchecked Sendable {
    public let config: ChatGLMConfig
    let wordEmbeddings: Weight
    let layers: [GLMBlock]
    public let unusedWeights: [String]

    /// `weights`' policy decides how the matrices are stored (`load` sets mapped, used once per
    /// prompt, and int8 for `.int8` precisions).
    public init(config: ChatGLMConfig, weights: WeightLoader, backend: ComputeBackend = Backends.float32) throws {
        try config.validate()
        self.config = config
        let w = weights.scope("")
        wordEmbeddings = try w.loader.weight("embedding.word_embeddings.weight",
                                             shape: [config.paddedVocabSize, config.hiddenSize], residency: .mapped)
        layers = try (0..<config.numLayers).map {
            try GLMBlock(w.scope("encoder.layers.\($0)"), config: config, backend: backend)
        }
        // Present in every checkpoint, never needed by Kolors.
        weights.ignore("output_layer.weight")
        weights.ignore("encoder.final_layernorm.weight")
        weights.ignore("rotary_pos_emb.inv_freq")
        unusedWeights = weights.unusedNames
    }

    /// Loads `text_encoder/` of a diffusers folder; large weights stay mapped by default.
    /// With `.int8`, quantized weights are mapped from `cacheDirectory` when cached there, and
    /// written there after the first quantization (nil: no cache).
    public static func load(from model: DiffusersModel, variant: WeightVariant = .fp16,
                            residency: WeightResidency = .mapped, precision: TextEncoderPrecision = .fp16,
                            cacheDirectory: String? = nil,
                            backend: ComputeBackend = Backends.float32) throws -> ChatGLMModel {
        let config = try model.config("text_encoder", as: ChatGLMConfig.self)
        let archive = try model.weights("text_encoder", variant: variant)
        let cache = precision.isInt8 ? cacheDirectory.map { Int8WeightCache(directory: $0, archive: archive) } : nil
        let cached = cache?.open()
        // Each matrix runs once per prompt: a backend should not keep a converted copy.
        var policy = WeightPolicy(residency: residency, usedOncePerRun: true)
        if precision.isInt8 { policy.int8 = { GLMBlock.isQuantized($0) } }
        if let cached { policy.int8Cached = { name in Int8WeightCache.matrix(name, in: cached) } }
        if precision == .bf16, let cacheDirectory {
            let bf16 = BF16WeightCache(directory: cacheDirectory, archive: archive)
            if bf16.open() == nil {
                let names = archive.names.filter {
                    GLMBlock.isQuantized($0.hasPrefix("transformer.") ? String($0.dropFirst("transformer.".count)) : $0)
                }
                try bf16.write(names, from: archive)
            }
            guard let file = bf16.open() else { throw CheckpointError("text_encoder: the bf16 weight cache \(bf16.path) cannot be read") }
            policy.replacement = { name, shape in
                ChatGLMConfig.weightAliases(name).lazy.compactMap { BF16WeightCache.matrix($0, shape: shape, in: file) }.first
            }
        }
        let loader = WeightLoader(component: "text_encoder", archive: archive, policy: policy,
                                  aliases: ChatGLMConfig.weightAliases)
        var backend = backend
        if precision == .int8W8A8 {
            guard W8A8Backend.isAvailable else {
                throw UnsupportedConfiguration("--text-encoder-precision int8-w8a8 needs oneDNN's int8 kernels, which this CPU lacks; use int8")
            }
            backend = W8A8Backend(base: backend)
        }
        let encoder = try ChatGLMModel(config: config, weights: loader, backend: backend)
        if let cache, cached == nil {
            // A failed cache write costs only the next start's quantization time.
            try? cache.write(encoder.int8Matrices)
        }
        return encoder
    }

    /// Every int8 matrix with its checkpoint name (for the cache).
    var int8Matrices: [(name: String, matrix: Int8Matrix)] {
        layers.enumerated().flatMap { i, layer in
            layer.quantizedLinears(prefix: "encoder.layers.\(i).").compactMap { name, l in
                if case .int8(let q) = l.weight.storage { return (name, q) }
                return nil
            }
        }
    }

    /// The attention mask ChatGLM builds: plain causal when nothing is padded; otherwise real
    /// queries see real keys up to themselves and pad queries see every key.
    static func mask(_ attentionMask: [[Int]]) -> AttentionMask {
        let b = attentionMask.count, s = attentionMask[0].count
        if attentionMask.allSatisfy({ $0.allSatisfy { $0 != 0 } }) {
            let m = Tensor(shape: [s, s], zeroed: true)
            for q in 0..<s { for k in (q + 1)..<max(q + 1, s) { m.pointer[q * s + k] = -.infinity } }
            return .shared(m)
        }
        let m = Tensor(shape: [b, s, s], zeroed: true)
        for bi in 0..<b {
            let am = attentionMask[bi]
            for q in 0..<s where am[q] != 0 {
                let row = m.pointer + (bi * s + q) * s
                for k in 0..<s where k > q || am[k] == 0 { row[k] = -.infinity }
            }
        }
        return .perBatch(m)
    }

    /// Runs the encoder on tokenized prompts (ids, mask and positions as the tokenizer returns
    /// them). `probe` receives every hidden state (`hidden_states.<i>`, [B, S, hidden]).
    public func encode(inputIds: [[Int]], attentionMask: [[Int]], positionIds: [[Int]],
                       cancel: CancellationToken? = nil,
                       probe: ((String, Tensor) -> Void)? = nil) throws -> TextEncoding {
        let b = inputIds.count, s = inputIds[0].count
        precondition(attentionMask.count == b && positionIds.count == b, "batch sizes differ")
        let hidden = config.hiddenSize
        var x = embeddingLookup(wordEmbeddings, ids: inputIds.flatMap { $0 }).reshaped([b, s, hidden])
        probe?("hidden_states.0", x)
        let (cos, sin) = rotaryTables(positions: positionIds.flatMap { $0 }, rotaryDim: config.rotaryDim)
        let mask = ChatGLMModel.mask(attentionMask)
        var penultimate = x
        for (i, layer) in layers.enumerated() {
            try cancel?.check()
            if i == layers.count - 1 { penultimate = x }
            x = layer(x, cos: cos, sin: sin, mask: mask)
            layer.releasePages()
            probe?("hidden_states.\(i + 1)", x)
        }
        let pooled = Tensor(shape: [b, hidden], zeroed: false)
        for bi in 0..<b {
            (pooled.pointer + bi * hidden).update(from: x.pointer + (bi * s + s - 1) * hidden, count: hidden)
        }
        return TextEncoding(promptEmbeds: penultimate, pooled: pooled)
    }
}
