import KolorsEngine

/// `vae/config.json` of an `AutoencoderKL`, with diffusers' defaults for absent keys.
public struct AutoencoderKLConfig: ValidatedConfig, Sendable {
    public var inChannels = 3
    public var outChannels = 3
    public var downBlockTypes: [String]
    public var upBlockTypes: [String]
    public var blockOutChannels: [Int]
    public var layersPerBlock = 1
    public var actFn = "silu"
    public var latentChannels = 4
    public var normNumGroups = 32
    public var sampleSize: Int?
    public var scalingFactor: Float = 0.18215
    public var shiftFactor: Float?
    public var forceUpcast = true
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", downBlockTypes = "down_block_types"
        case upBlockTypes = "up_block_types", blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block"
        case actFn = "act_fn", latentChannels = "latent_channels", normNumGroups = "norm_num_groups"
        case sampleSize = "sample_size", scalingFactor = "scaling_factor", shiftFactor = "shift_factor"
        case forceUpcast = "force_upcast", useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention"
    }

    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func opt<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        inChannels = try opt(.inChannels, 3)
        outChannels = try opt(.outChannels, 3)
        downBlockTypes = try c.decode([String].self, forKey: .downBlockTypes)
        upBlockTypes = try c.decode([String].self, forKey: .upBlockTypes)
        blockOutChannels = try c.decode([Int].self, forKey: .blockOutChannels)
        layersPerBlock = try opt(.layersPerBlock, 1)
        actFn = try opt(.actFn, "silu")
        latentChannels = try opt(.latentChannels, 4)
        normNumGroups = try opt(.normNumGroups, 32)
        sampleSize = try? c.decodeIfPresent(Int.self, forKey: .sampleSize)
        scalingFactor = try opt(.scalingFactor, 0.18215)
        shiftFactor = try c.decodeIfPresent(Float.self, forKey: .shiftFactor)
        forceUpcast = try opt(.forceUpcast, true)
        useQuantConv = try opt(.useQuantConv, true)
        usePostQuantConv = try opt(.usePostQuantConv, true)
        midBlockAddAttention = try opt(.midBlockAddAttention, true)
    }

    /// 2^(levels − 1): pixels per latent cell.
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }

    public func validate() throws {
        try checkRanges()
        func bad(_ s: String) -> UnsupportedConfiguration { UnsupportedConfiguration("vae/config.json: \(s)") }
        guard downBlockTypes.allSatisfy({ $0 == "DownEncoderBlock2D" }) else { throw bad("only DownEncoderBlock2D is supported") }
        guard upBlockTypes.allSatisfy({ $0 == "UpDecoderBlock2D" }) else { throw bad("only UpDecoderBlock2D is supported") }
        guard downBlockTypes.count == blockOutChannels.count, upBlockTypes.count == blockOutChannels.count else {
            throw bad("block types must match block_out_channels")
        }
        guard actFn == "silu" else { throw bad("act_fn \(actFn) is not supported") }
        for c in blockOutChannels where c % normNumGroups != 0 { throw bad("\(c) channels do not split into \(normNumGroups) groups") }
    }

    /// Counts at least 1 and upper bounds far above any real VAE (SDXL's: 4 levels of ≤ 512
    /// channels, 2 layers), checked before any value sizes a tensor or a loop. The level count
    /// bounds `scaleFactor` (8 levels: 128 pixels per latent cell); the scaling factor divides
    /// every latent, so it must be a positive finite number.
    func checkRanges() throws {
        let c = ConfigChecks(file: "vae/config.json")
        try c.check("block_out_channels (number of levels)", blockOutChannels.count, in: 1...8)
        try c.check("block_out_channels", blockOutChannels, in: 1...UNet2DConditionConfig.maxChannels)
        try c.check("in_channels", inChannels, in: 1...64)
        try c.check("out_channels", outChannels, in: 1...64)
        try c.check("latent_channels", latentChannels, in: 1...64)
        try c.check("layers_per_block", layersPerBlock, in: 1...32)
        try c.check("norm_num_groups", normNumGroups, in: 1...1024)
        try c.check("scaling_factor", Double(scalingFactor), in: 0...1000, openLower: true)
        if let s = shiftFactor { try c.check("shift_factor", Double(s), in: -1000...1000) }
        if let s = sampleSize { try c.check("sample_size", s, in: 1...65536) }
    }

    /// Old checkpoints name the mid-block attention `query/key/value/proj_attn`.
    public static func weightAliases(_ name: String) -> [String] {
        for (new, old) in [(".to_q.", ".query."), (".to_k.", ".key."), (".to_v.", ".value."), (".to_out.0.", ".proj_attn.")]
        where name.contains(".attentions.") && name.contains(new) {
            return [name, name.replacingOccurrences(of: new, with: old)]
        }
        return [name]
    }
}
