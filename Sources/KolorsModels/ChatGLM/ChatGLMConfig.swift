/// `text_encoder/config.json` of Kolors' ChatGLM3 (diffusers' vendored `ChatGLMConfig`).
public struct ChatGLMConfig: Decodable, Sendable {
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
        func bad(_ s: String) -> UnsupportedConfiguration { UnsupportedConfiguration("text_encoder/config.json: \(s)") }
        guard rmsnorm else { throw bad("LayerNorm ChatGLM variants are not supported (rmsnorm must be true)") }
        guard !applyResidualConnectionPostLayernorm else { throw bad("apply_residual_connection_post_layernorm is not supported") }
        guard preSeqLen == nil else { throw bad("prefix tuning (pre_seq_len) is not supported") }
        guard numAttentionHeads % kvHeads == 0 else { throw bad("\(numAttentionHeads) heads do not split into \(kvHeads) groups") }
        guard rotaryDim % 2 == 0 else { throw bad("kv_channels must be divisible by 4") }
    }

    /// Checkpoints of `ChatGLMForConditionalGeneration` prefix every key with `transformer.`.
    public static func weightAliases(_ name: String) -> [String] { [name, "transformer." + name] }
}
