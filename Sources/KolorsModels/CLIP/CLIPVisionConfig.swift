import KolorsEngine

/// `image_encoder/config.json`: mirrors transformers' `CLIPVisionConfig` (with its defaults for
/// absent keys). A full `CLIPConfig` is accepted too: its `vision_config` is used.
public struct CLIPVisionConfig: ValidatedConfig, Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5
    public var projectionDim: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numChannels = "num_channels", imageSize = "image_size"
        case patchSize = "patch_size", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
        case projectionDim = "projection_dim", visionConfig = "vision_config"
    }

    public init() {}

    public init(from decoder: Swift.Decoder) throws {
        let outer = try decoder.container(keyedBy: CodingKeys.self)
        let c = outer.contains(.visionConfig) ? try outer.nestedContainer(keyedBy: CodingKeys.self, forKey: .visionConfig) : outer
        let d = CLIPVisionConfig()
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        numChannels = try c.decodeIfPresent(Int.self, forKey: .numChannels) ?? d.numChannels
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        projectionDim = try outer.decodeIfPresent(Int.self, forKey: .projectionDim)
            ?? c.decodeIfPresent(Int.self, forKey: .projectionDim)
    }

    /// Patches per side (24 for ViT-L/14 at 336 px).
    public var gridSize: Int { imageSize / patchSize }
    /// Class token + patches (577 for ViT-L/14 at 336 px).
    public var positions: Int { gridSize * gridSize + 1 }
    public var headDim: Int { hiddenSize / numAttentionHeads }

    public func validate() throws {
        // Upper bounds far above ViT-bigG (1664 wide, 48 layers); sizes within the image limit.
        let c = ConfigChecks(file: "image_encoder/config.json")
        try c.check("hidden_size", hiddenSize, in: 1...16384)
        try c.check("intermediate_size", intermediateSize, in: 1...65536)
        try c.check("num_hidden_layers", numHiddenLayers, in: 1...256)
        try c.check("num_attention_heads", numAttentionHeads, in: 1...1024)
        try c.check("num_channels", numChannels, in: 1...16)
        try c.check("image_size", imageSize, in: 1...4096)
        try c.check("patch_size", patchSize, in: 1...4096)
        try c.check("layer_norm_eps", Double(layerNormEps), in: 0...1, openLower: true)
        if let p = projectionDim { try c.check("projection_dim", p, in: 1...16384) }
        guard hiddenSize > 0, numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw UnsupportedConfiguration("image_encoder: hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard patchSize > 0, imageSize >= patchSize, imageSize % patchSize == 0 else {
            throw UnsupportedConfiguration("image_encoder: image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        guard numHiddenLayers >= 1 else { throw UnsupportedConfiguration("image_encoder: no layers") }
        guard CLIPActivation(hiddenAct) != nil else {
            throw UnsupportedConfiguration("image_encoder: hidden_act '\(hiddenAct)' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)")
        }
    }
}
