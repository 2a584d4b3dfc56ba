import KolorsEngine

/// `unet/config.json` of a `UNet2DConditionModel`, with diffusers' defaults for absent keys.
public struct UNet2DConditionConfig: ValidatedConfig, Sendable {
    public var inChannels = 4
    public var outChannels = 4
    public var sampleSize: Int?
    public var blockOutChannels: [Int]
    public var layersPerBlock: IntOrList = .one(2)
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    public var attentionHeadDim: IntOrList = .one(8)
    public var numAttentionHeads: IntOrList?
    public var transformerLayersPerBlock: IntOrList = .one(1)
    public var reverseTransformerLayersPerBlock: [Int]?
    public var crossAttentionDim: IntOrList = .one(1280)
    public var encoderHidDim: Int?
    public var encoderHidDimType: String?
    public var additionEmbedType: String?
    public var additionTimeEmbedDim: Int?
    public var projectionClassEmbeddingsInputDim: Int?
    public var useLinearProjection = false
    public var normNumGroups = 32
    public var normEps: Float = 1e-5
    public var actFn = "silu"
    public var flipSinToCos = true
    public var freqShift = 0
    public var downsamplePadding = 1
    public var midBlockScaleFactor: Float = 1
    public var resnetTimeScaleShift = "default"
    public var centerInputSample = false
    public var convInKernel = 3
    public var convOutKernel = 3
    public var timeEmbeddingType = "positional"
    public var classEmbedType: String?
    public var timeCondProjDim: Int?
    public var timeEmbeddingDim: Int?
    public var onlyCrossAttention = false
    public var dualCrossAttention = false
    public var upcastAttention = false
    public var resnetOutScaleFactor: Float = 1

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", sampleSize = "sample_size"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case downBlockTypes = "down_block_types", upBlockTypes = "up_block_types", midBlockType = "mid_block_type"
        case attentionHeadDim = "attention_head_dim", numAttentionHeads = "num_attention_heads"
        case transformerLayersPerBlock = "transformer_layers_per_block"
        case reverseTransformerLayersPerBlock = "reverse_transformer_layers_per_block"
        case crossAttentionDim = "cross_attention_dim", encoderHidDim = "encoder_hid_dim"
        case encoderHidDimType = "encoder_hid_dim_type", additionEmbedType = "addition_embed_type"
        case additionTimeEmbedDim = "addition_time_embed_dim"
        case projectionClassEmbeddingsInputDim = "projection_class_embeddings_input_dim"
        case useLinearProjection = "use_linear_projection", normNumGroups = "norm_num_groups", normEps = "norm_eps"
        case actFn = "act_fn", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift"
        case downsamplePadding = "downsample_padding", midBlockScaleFactor = "mid_block_scale_factor"
        case resnetTimeScaleShift = "resnet_time_scale_shift", centerInputSample = "center_input_sample"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel"
        case timeEmbeddingType = "time_embedding_type", classEmbedType = "class_embed_type"
        case timeCondProjDim = "time_cond_proj_dim", timeEmbeddingDim = "time_embedding_dim"
        case onlyCrossAttention = "only_cross_attention", dualCrossAttention = "dual_cross_attention"
        case upcastAttention = "upcast_attention", resnetOutScaleFactor = "resnet_out_scale_factor"
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func opt<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        inChannels = try opt(.inChannels, 4)
        outChannels = try opt(.outChannels, 4)
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        layersPerBlock = try opt(.layersPerBlock, .one(2))
        downBlockTypes = try c.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try c.decode([String].self, forKey: .upBlockTypes)
        midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? (c.contains(.midBlockType) ? nil : "UNetMidBlock2DCrossAttn")
        attentionHeadDim = try opt(.attentionHeadDim, .one(8))
        numAttentionHeads = try c.decodeIfPresent(IntOrList.self, forKey: .numAttentionHeads)
        transformerLayersPerBlock = try opt(.transformerLayersPerBlock, .one(1))
        reverseTransformerLayersPerBlock = try c.decodeIfPresent([Int].self, forKey: .reverseTransformerLayersPerBlock)
        crossAttentionDim = try opt(.crossAttentionDim, .one(1280))
        encoderHidDim = try c.decodeIfPresent(Int.self, forKey: .encoderHidDim)
        encoderHidDimType = try c.decodeIfPresent(String.self, forKey: .encoderHidDimType)
        additionEmbedType = try c.decodeIfPresent(String.self, forKey: .additionEmbedType)
        additionTimeEmbedDim = try c.decodeIfPresent(Int.self, forKey: .additionTimeEmbedDim)
        projectionClassEmbeddingsInputDim = try c.decodeIfPresent(Int.self, forKey: .projectionClassEmbeddingsInputDim)
        useLinearProjection = try opt(.useLinearProjection, false)
        normNumGroups = try opt(.normNumGroups, 32)
        normEps = try opt(.normEps, 1e-5)
        actFn = try opt(.actFn, "silu")
        flipSinToCos = try opt(.flipSinToCos, true)
        freqShift = try opt(.freqShift, 0)
        downsamplePadding = try opt(.downsamplePadding, 1)
        midBlockScaleFactor = try opt(.midBlockScaleFactor, 1)
        resnetTimeScaleShift = try opt(.resnetTimeScaleShift, "default")
        centerInputSample = try opt(.centerInputSample, false)
        convInKernel = try opt(.convInKernel, 3)
        convOutKernel = try opt(.convOutKernel, 3)
        timeEmbeddingType = try opt(.timeEmbeddingType, "positional")
        classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        timeEmbeddingDim = try c.decodeIfPresent(Int.self, forKey: .timeEmbeddingDim)
        onlyCrossAttention = (try? c.decodeIfPresent(Bool.self, forKey: .onlyCrossAttention)) ?? false
        dualCrossAttention = try opt(.dualCrossAttention, false)
        upcastAttention = try opt(.upcastAttention, false)
        resnetOutScaleFactor = try opt(.resnetOutScaleFactor, 1)
    }

    // MARK: derived values, as UNet2DConditionModel.__init__ computes them

    public var levels: Int { blockOutChannels.count }
    /// Heads per level (diffusers' `attention_head_dim` is really the head count when
    /// `num_attention_heads` is absent).
    public var headsPerLevel: [Int] { (numAttentionHeads ?? attentionHeadDim).values(levels) }
    public var layersPerLevel: [Int] { layersPerBlock.values(levels) }
    public var transformerDepthPerLevel: [Int] { transformerLayersPerBlock.values(levels) }
    public var crossAttentionDimPerLevel: [Int] { crossAttentionDim.values(levels) }
    public var timeEmbedDim: Int { timeEmbeddingDim ?? blockOutChannels[0] * 4 }
    /// Width of the text features that reach cross-attention.
    public var contextDim: Int { crossAttentionDimPerLevel.last ?? 0 }

    /// Throws for any configuration this engine does not implement, naming the key.
    public func validate() throws {
        try checkRanges()
        func bad(_ s: String) -> UnsupportedConfiguration { UnsupportedConfiguration("unet/config.json: \(s)") }
        guard downBlockTypes.count == levels, upBlockTypes.count == levels else {
            throw bad("down_block_types/up_block_types must have one entry per block_out_channels entry")
        }
        for t in downBlockTypes where t != "DownBlock2D" && t != "CrossAttnDownBlock2D" { throw bad("down block type \(t) is not supported") }
        for t in upBlockTypes where t != "UpBlock2D" && t != "CrossAttnUpBlock2D" { throw bad("up block type \(t) is not supported") }
        if let m = midBlockType, m != "UNetMidBlock2DCrossAttn" { throw bad("mid block type \(m) is not supported") }
        guard actFn == "silu" else { throw bad("act_fn \(actFn) is not supported") }
        guard timeEmbeddingType == "positional" else { throw bad("time_embedding_type \(timeEmbeddingType) is not supported") }
        guard classEmbedType == nil, timeCondProjDim == nil else { throw bad("class/condition embeddings are not supported") }
        guard resnetTimeScaleShift == "default" else { throw bad("resnet_time_scale_shift \(resnetTimeScaleShift) is not supported") }
        guard !dualCrossAttention, !onlyCrossAttention else { throw bad("dual/only cross-attention is not supported") }
        if let t = encoderHidDimType, t != "text_proj" { throw bad("encoder_hid_dim_type \(t) is not supported") }
        if encoderHidDimType != nil, encoderHidDim == nil { throw bad("encoder_hid_dim_type needs encoder_hid_dim") }
        if let a = additionEmbedType {
            guard a == "text_time" else { throw bad("addition_embed_type \(a) is not supported") }
            guard additionTimeEmbedDim != nil, projectionClassEmbeddingsInputDim != nil else {
                throw bad("addition_embed_type text_time needs addition_time_embed_dim and projection_class_embeddings_input_dim")
            }
        }
        guard Set(crossAttentionDimPerLevel).count == 1 else { throw bad("per-level cross_attention_dim is not supported") }
        for (c, h) in zip(blockOutChannels, headsPerLevel) where c % h != 0 {
            throw bad("\(c) channels do not split into \(h) attention heads")
        }
        for c in blockOutChannels where c % normNumGroups != 0 {
            throw bad("\(c) channels do not split into \(normNumGroups) norm groups")
        }
    }

    /// Every number that sizes a tensor, a list or a loop, checked before any is used: counts
    /// at least 1, per-level lists one entry per level, and upper bounds far above any real
    /// UNet (Kolors: 3 levels of ≤ 1280 channels, 2 layers, 10 transformer blocks) so that a
    /// damaged or hostile config cannot divide by zero, index past a list or ask for gigabytes.
    func checkRanges() throws {
        let c = ConfigChecks(file: "unet/config.json")
        try c.check("block_out_channels (number of levels)", levels, in: 1...8)
        try c.check("block_out_channels", blockOutChannels, in: 1...Self.maxChannels)
        try c.check("in_channels", inChannels, in: 1...256)
        try c.check("out_channels", outChannels, in: 1...256)
        try c.check("layers_per_block", layersPerLevel, in: 1...32, count: levels)
        try c.check(numAttentionHeads == nil ? "attention_head_dim" : "num_attention_heads", headsPerLevel, in: 1...1024, count: levels)
        try c.check("transformer_layers_per_block", transformerDepthPerLevel, in: 1...64, count: levels)
        if let r = reverseTransformerLayersPerBlock { try c.check("reverse_transformer_layers_per_block", r, in: 1...64, count: levels) }
        if case .list = crossAttentionDim {
            try c.check("cross_attention_dim", crossAttentionDimPerLevel, in: 1...Self.maxChannels, count: levels)
        } else {
            try c.check("cross_attention_dim", crossAttentionDimPerLevel, in: 1...Self.maxChannels)
        }
        if let v = encoderHidDim { try c.check("encoder_hid_dim", v, in: 1...65536) }
        if let v = additionTimeEmbedDim { try c.check("addition_time_embed_dim", v, in: 1...4096) }
        if let v = projectionClassEmbeddingsInputDim { try c.check("projection_class_embeddings_input_dim", v, in: 1...65536) }
        if let v = timeEmbeddingDim { try c.check("time_embedding_dim", v, in: 1...65536) }
        try c.check("norm_num_groups", normNumGroups, in: 1...1024)
        try c.check("norm_eps", Double(normEps), in: 0...1, openLower: true)
        try c.check("freq_shift", freqShift, in: 0...1)
        try c.check("downsample_padding", downsamplePadding, in: 0...1)  // more changes the sizes the skips expect
        for (key, k) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] {
            try c.check(key, k, in: 1...7)
            guard k % 2 == 1 else { throw c.fail("\(key) must be odd (got \(k))") }
        }
        try c.check("mid_block_scale_factor", Double(midBlockScaleFactor), in: 0...1000, openLower: true)
        try c.check("resnet_out_scale_factor", Double(resnetOutScaleFactor), in: 0...1000, openLower: true)
        // × the VAE's 8 pixels per cell must stay within the 4096-pixel image limit.
        if let s = sampleSize { try c.check("sample_size", s, in: 1...512) }
    }

    /// Widest block (SDXL and Kolors: 1280).
    public static let maxChannels = 16384
}
