import Foundation
import KolorsEngine
import KolorsModels

/// Turns prompts into ChatGLM3 embeddings as `KolorsPipeline.encode_prompt` does, loading the
/// text encoder only when a prompt is not in the cache and releasing it right after, so it
/// never sits in memory beside the UNet. Cached by (model, text).
public final class PromptEncoder: @unchecked Sendable {
    public struct Embedding: Sendable {
        /// hidden_states[-2], [1, 256, hidden]
        public let embeds: Tensor
        /// [1, hidden]
        public let pooled: Tensor
    }

    public let tokenizer: ChatGLMTokenizer
    private let model: DiffusersModel
    private let variant: WeightVariant
    private let backend: ComputeBackend
    private var cache: [String: Embedding] = [:]
    private var order: [String] = []
    private let lock = NSLock()
    /// Embeddings kept (about 4 MiB each for full-size Kolors).
    public var capacity = 32
    /// How many times the text encoder was loaded (tests check the cache with it).
    public private(set) var encoderLoads = 0

    /// fp16 (exact) or int8 (weight-only, half the memory; cached under `Int8WeightCache.defaultDirectory`).
    public let precision: TextEncoderPrecision

    public init(model: DiffusersModel, variant: WeightVariant, precision: TextEncoderPrecision = .fp16,
                backend: ComputeBackend) throws {
        self.model = model
        self.variant = variant
        self.precision = precision
        self.backend = backend
        tokenizer = try ChatGLMTokenizer.load(from: model)
        try tokenizer.checkFits(try model.config("text_encoder", as: ChatGLMConfig.self))
    }

    /// Loads the encoder, encodes, and lets it go (its memory map closes on return).
    private func runEncoder(_ texts: [String], cancel: CancellationToken?) throws -> TextEncoding {
        let encoder = try ChatGLMModel.load(from: model, variant: variant, precision: precision,
                                            cacheDirectory: precision == .fp16 ? nil : Int8WeightCache.defaultDirectory,
                                            backend: backend)
        encoderLoads += 1
        let batch = tokenizer(texts, maxLength: 256)
        return try encoder.encode(inputIds: batch.inputIds.map { $0.map(Int.init) },
                                  attentionMask: batch.attentionMask.map { $0.map(Int.init) },
                                  positionIds: batch.positionIds.map { $0.map(Int.init) },
                                  cancel: cancel)
    }

    public func cached(_ text: String) -> Embedding? {
        lock.lock(); defer { lock.unlock() }
        return cache[text]
    }

    /// Embeddings for every text (in order); returns whether the encoder had to run.
    public func encode(_ texts: [String], cancel: CancellationToken?,
                       loading: (String) -> Void) throws -> (embeddings: [Embedding], ranEncoder: Bool) {
        var missing: [String] = []
        for t in texts where cached(t) == nil && !missing.contains(t) { missing.append(t) }
        if !missing.isEmpty {
            loading("text_encoder")
            let encoded = try runEncoder(missing, cancel: cancel)
            let seq = encoded.promptEmbeds.shape[1], hidden = encoded.promptEmbeds.shape[2]
            lock.lock()
            for (i, t) in missing.enumerated() {
                let e = Embedding(embeds: encoded.promptEmbeds.slice(i..<(i + 1)).copy().reshaped([1, seq, hidden]),
                                  pooled: encoded.pooled.slice(i..<(i + 1)).copy())
                cache[t] = e
                order.removeAll { $0 == t }
                order.append(t)
            }
            while order.count > capacity { cache[order.removeFirst()] = nil }
            lock.unlock()
        }
        lock.lock(); defer { lock.unlock() }
        return (texts.map { cache[$0]! }, !missing.isEmpty)
    }
}

