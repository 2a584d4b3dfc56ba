import KolorsEngine

/// What the UNet's cross-attention layers attend to: diffusers' `encoder_hidden_states`, which
/// with an IP-Adapter loaded becomes the pair (text tokens, [image tokens]) handed to
/// `IPAdapterAttnProcessor2_0`, plus the processors' scale.
public struct CrossAttentionContext: Sendable {
    /// Projected text tokens [B, Lt, cross_attention_dim].
    public var text: Tensor
    /// IP-Adapter image tokens [B, images·queries, cross_attention_dim] (resampler output,
    /// images flattened into one key sequence), or nil.
    public var image: Tensor?
    /// The IP-Adapter scale (`set_ip_adapter_scale`); 0 skips the image branch.
    public var imageScale: Float
    /// `to_k_ip` / `to_v_ip` per cross-attention layer (indexed by `Attention.crossAttentionIndex`).
    public var imageProjections: [(toK: Linear, toV: Linear)]
    /// K/V projections kept across a run's steps, or nil (computed each call).
    public var cache: CrossAttentionCache?

    public init(text: Tensor, image: Tensor? = nil, imageScale: Float = 1, imageProjections: [(toK: Linear, toV: Linear)] = [],
                cache: CrossAttentionCache? = nil) {
        self.text = text
        self.image = image
        self.imageScale = imageScale
        self.imageProjections = imageProjections
        self.cache = cache
    }

    /// The image projections of a cross-attention layer, if any.
    func projections(for attention: Attention) -> (toK: Linear, toV: Linear)? {
        guard image != nil, let i = attention.crossAttentionIndex, i < imageProjections.count else { return nil }
        return imageProjections[i]
    }
}
