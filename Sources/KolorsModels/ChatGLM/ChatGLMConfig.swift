import KolorsEngine

/// `text_encoder/config.json` of Kolors' ChatGLM3 (diffusers' vendored `ChatGLMConfig`).
public struct ChatGLMConfig: ValidatedConfig, Sendable {
    public var numLayers: Int
    public var hiddenSize: Int
    public var numAttentionHeads: Int
    public var kvChannels: Int
    public var multiQueryAttention = false
    public var multiQueryGroupNum = 1
    public var ffnHiddenSize: Int
    public var paddedVocabSize: Int
    public var layernormEpsilon: Float = 1e-5
    public var rmsnorm = true
    public var postLayerNorm = true
    public var addBiasLinear = false
    public var addQkvBias = false
    public var applyResidualConnectionPostLayernorm = false
    public var seqLength = 2048
    public var preSeqLen: Int?

    enum CodingKeys: String, CodingKey {
        case numLayers = "num_layers", hiddenSize = "hidden_size", numAttentionHeads = "num_attention_heads"
        case kvChannels = "kv_channels", multiQueryAttention = "multi_query_attention"
        case multiQueryGroupNum = "multi_query_group_num", ffnHiddenSize = "ffn_hidden_size"
        case paddedVocabSize = "padded_vocab_size", layernormEpsilon = "layernorm_epsilon", rmsnorm
        case postLayerNorm = "post_layer_norm", addBiasLinear = "add_bias_linear", addQkvBias = "add_qkv_bias"
        case applyResidualConnectionPostLayernorm = "apply_residual_connection_post_layernorm"
        case seqLength = "seq_length", preSeqLen = "pre_seq_len"
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func opt<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        numLayers = try c.decode(Int.self, forKey: .numLayers)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        kvChannels = try opt(.kvChannels, hiddenSize / max(1, numAttentionHeads))
        multiQueryAttention = try opt(.multiQueryAttention, false)
        multiQueryGroupNum = try opt(.multiQueryGroupNum, 1)
        ffnHiddenSize = try c.decode(Int.self, forKey: .ffnHiddenSize)
        paddedVocabSize = try c.decode(Int.self, forKey: .paddedVocabSize)
        layernormEpsilon = try opt(.layernormEpsilon, 1e-5)
        rmsnorm = try opt(.rmsnorm, true)
        postLayerNorm = try opt(.postLayerNorm, true)
        addBiasLinear = try opt(.addBiasLinear, false)
        addQkvBias = try opt(.addQkvBias, false)
        applyResidualConnectionPostLayernorm = try opt(.applyResidualConnectionPostLayernorm, false)
        seqLength = try opt(.seqLength, 2048)
        preSeqLen = try c.decodeIfPresent(Int.self, forKey: .preSeqLen)
    }

    /// K/V heads: the multi-query groups, or every head without multi-query attention.
    public var kvHeads: Int { multiQueryAttention ? multiQueryGroupNum : numAttentionHeads }
    /// Dims rotated by RoPE in each head (ChatGLM rotates the first half of kv_channels).
    public var rotaryDim: Int { kvChannels / 2 }

    public func validate() throws {
        try checkRanges()
        func bad(_ s: String) -> UnsupportedConfiguration { UnsupportedConfiguration("text_encoder/config.json: \(s)") }
        guard rmsnorm else { throw bad("LayerNorm ChatGLM variants are not supported (rmsnorm must be true)") }
        guard !applyResidualConnectionPostLayernorm else { throw bad("apply_residual_connection_post_layernorm is not supported") }
        guard preSeqLen == nil else { throw bad("prefix tuning (pre_seq_len) is not supported") }
        guard numAttentionHeads % kvHeads == 0 else { throw bad("\(numAttentionHeads) heads do not split into \(kvHeads) groups") }
        guard rotaryDim % 2 == 0 else { throw bad("kv_channels must be divisible by 4") }
    }

    /// Counts at least 1 and upper bounds far above ChatGLM3-6B (28 layers, 4096 wide, 32 heads
    /// of 128, 2 groups, 13696 FFN, 65024 ids), checked before any value sizes a tensor or a
    /// loop. One layer at least: the pipeline reads the second-to-last hidden state.
    func checkRanges() throws {
        let c = ConfigChecks(file: "text_encoder/config.json")
        try c.check("num_layers", numLayers, in: 1...256)
        try c.check("hidden_size", hiddenSize, in: 1...65536)
        try c.check("num_attention_heads", numAttentionHeads, in: 1...1024)
        try c.check("kv_channels", kvChannels, in: 1...4096)
        if multiQueryAttention { try c.check("multi_query_group_num", multiQueryGroupNum, in: 1...numAttentionHeads) }
        try c.check("ffn_hidden_size", ffnHiddenSize, in: 1...262_144)
        try c.check("padded_vocab_size", paddedVocabSize, in: 1...(1 << 22))
        try c.check("layernorm_epsilon", Double(layernormEpsilon), in: 0...1, openLower: true)
        try c.check("seq_length", seqLength, in: 1...(1 << 20))
    }

    /// Checkpoints of `ChatGLMForConditionalGeneration` prefix every key with `transformer.`.
    public static func weightAliases(_ name: String) -> [String] { [name, "transformer." + name] }
}
