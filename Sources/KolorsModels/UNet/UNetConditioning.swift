import KolorsEngine

/// A run's conditioning of the UNet, made once by `UNet2DConditionModel.prepare` and read by
/// every step, never changed: the projected text tokens (`encoder_hid_proj`), the added
/// `text_time` embedding, and every cross-attention layer's K and V of the text — and of the
/// IP-Adapter image tokens — keyed by the layer's weight path
/// (`down_blocks.1.attentions.0.transformer_blocks.0.attn2`). diffusers recomputes all of them at
/// every step; they depend only on the conditioning, so keeping them is exact and saves about
/// 10 % of a 512² step (0.35 TFLOP of 3.46), 2.5 % at 1024², for 0.33 GB (full-size Kolors,
/// CFG batch 2) held in one allocation.
public struct UNetConditioning: @unchecked Sendable {
    /// Projected text tokens [B, Lt, cross_attention_dim].
    public let text: Tensor
    /// `add_embedding` of the pooled text and the micro-conditioning ids, [B, time_embed_dim]
    /// (nil without `text_time` conditioning).
    let addedEmbedding: Tensor?
    /// The IP-Adapter scale (`set_ip_adapter_scale`); 0 or no image tokens: the text alone.
    public let imageScale: Float
    /// Batch size the conditioning was made for.
    public let batch: Int
    let layers: [String: Layer]

    /// One cross-attention layer's K/V of the text, and of the image tokens when there are any.
    struct Layer {
        let k: Tensor, v: Tensor
        let image: (k: Tensor, v: Tensor)?
    }

    init(text: Tensor, addedEmbedding: Tensor?, imageScale: Float, layers: [String: Layer]) {
        self.text = text
        self.addedEmbedding = addedEmbedding
        self.imageScale = imageScale
        self.batch = text.shape[0]
        self.layers = layers
    }

    /// The K/V kept for the cross-attention layer at `path`.
    func layer(_ path: String) -> Layer {
        guard let l = layers[path] else { preconditionFailure("no conditioning for cross-attention layer \(path)") }
        return l
    }

    /// Bytes of the kept tensors.
    public var bytes: Int {
        let kv = layers.values.reduce(0) { $0 + $1.k.count + $1.v.count + ($1.image.map { $0.k.count + $0.v.count } ?? 0) }
        return (kv + text.count + (addedEmbedding?.count ?? 0)) * 4
    }

    /// The number of K/V pairs kept (text and image).
    public var pairs: Int { layers.values.reduce(0) { $0 + 1 + ($1.image == nil ? 0 : 1) } }
}

extension UNet2DConditionModel {
    /// The conditioning of a run: `encoderHiddenStates` [B, L, encoder_hid_dim] (or the
    /// cross-attention width without encoder_hid_proj), SDXL micro-conditioning `textEmbeds`
    /// [B, pooled] and `timeIds` [B, 6], and optionally an IP-Adapter's projected image tokens
    /// [B, images·queries, cross_attention_dim] with its per-layer projections (checked by
    /// `checkIPAdapter`) and scale.
    public func prepare(text encoderHiddenStates: Tensor, textEmbeds: Tensor? = nil, timeIds: Tensor? = nil,
                        imageTokens: Tensor? = nil, ipAdapter: IPAdapterWeights? = nil, imageScale: Float = 1) throws -> UNetConditioning {
        let b = encoderHiddenStates.shape[0]
        var added: Tensor?
        if let addEmbedding {
            guard let textEmbeds, let timeIds, let tdim = config.additionTimeEmbedDim else {
                throw GenerationShapeError("text_time conditioning needs text_embeds and time_ids")
            }
            guard textEmbeds.shape[0] == b, timeIds.shape == [b, 6] else {
                throw GenerationShapeError("text_embeds \(textEmbeds.shape) and time_ids \(timeIds.shape) for a batch of \(b)")
            }
            let idEmb = timestepEmbedding(timeIds.values, dim: tdim, flipSinToCos: config.flipSinToCos,
                                          downscaleFreqShift: Float(config.freqShift)).reshaped([b, -1])
            added = addEmbedding(concat([textEmbeds.reshaped([b, -1]), idEmb], dim: 1))
        }
        let text = encoderHidProj.map { $0(encoderHiddenStates) } ?? encoderHiddenStates
        let useImage = imageTokens != nil && imageScale != 0
        if let imageTokens {
            guard let ipAdapter else { throw GenerationShapeError("image tokens need the IP-Adapter's projections") }
            guard imageTokens.shape[0] == b, imageTokens.shape.last == text.shape.last else {
                throw GenerationShapeError("image tokens \(imageTokens.shape) for a batch of \(b) with width \(text.shape.last ?? 0)")
            }
            try checkIPAdapter(ipAdapter)
        }
        // Every product is made first and copied into one allocation, and the kept tensors are
        // views made after the loop: kept tensors allocated one by one among the products' freed
        // memory pinned 1.2 GB more resident at full size.
        let layers = crossAttentionLayers
        let imageProjections = useImage ? ipAdapter!.layers.map { ($0.toK, $0.toV) } : []
        var products: [(Linear, Tensor)] = []
        for l in layers { products += [(l.attention.toK, text), (l.attention.toV, text)] }
        for p in imageProjections { products += [(p.0, imageTokens!), (p.1, imageTokens!)] }
        let widths = products.map { ($0.1.count / $0.0.inFeatures, $0.0.outFeatures) }
        let storage = TensorStorage(count: widths.reduce(0) { $0 + $1.0 * $1.1 })
        var offset = 0
        for (linear, tokens) in products {
            let product = linear(tokens)
            (storage.pointer + offset).update(from: product.pointer, count: product.count)
            offset += product.count
        }
        offset = 0
        var views: [Tensor] = []
        for ((_, tokens), (rows, width)) in zip(products, widths) {
            views.append(Tensor(shape: tokens.shape.dropLast() + [width], storage: storage, offset: offset))
            offset += rows * width
        }
        var kept: [String: UNetConditioning.Layer] = [:]
        for (i, l) in layers.enumerated() {
            let image = useImage ? (views[2 * layers.count + 2 * i], views[2 * layers.count + 2 * i + 1]) : nil
            kept[l.name] = UNetConditioning.Layer(k: views[2 * i], v: views[2 * i + 1], image: image)
        }
        return UNetConditioning(text: text, addedEmbedding: added, imageScale: useImage ? imageScale : 0, layers: kept)
    }
}

/// A conditioning tensor whose shape does not fit the UNet.
public struct GenerationShapeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
