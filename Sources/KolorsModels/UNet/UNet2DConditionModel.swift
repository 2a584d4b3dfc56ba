import KolorsEngine

/// Mirrors diffusers `UNet2DConditionModel` in the configurations Kolors uses (SDXL layout:
/// `text_time` added conditioning, optional `text_proj` encoder_hid_proj), config-driven.
public final class UNet2DConditionModel: @unchecked Sendable {
    public let config: UNet2DConditionConfig
    let convIn: Conv2d
    let timeEmbedding: TimestepEmbedding
    let addEmbedding: TimestepEmbedding?
    public let encoderHidProj: Linear?
    public let downBlocks: [DownBlock2D]
    public let midBlock: UNetMidBlock2DCrossAttn?
    public let upBlocks: [UpBlock2D]
    let convNormOut: GroupNorm
    let convOut: Conv2d
    /// Tensors in the checkpoint that no layer used (reported by `kolors info`).
    public let unusedWeights: [String]

    public init(config: UNet2DConditionConfig, weights: WeightLoader, backend: ComputeBackend = Backends.float32) throws {
        try config.validate()
        self.config = config
        let w = weights.scope("")
        let ch = config.blockOutChannels
        let levels = config.levels
        let temb = config.timeEmbedDim
        let heads = config.headsPerLevel, layers = config.layersPerLevel, depth = config.transformerDepthPerLevel
        let ctxDim = config.contextDim
        let g = config.normNumGroups, eps = config.normEps

        convIn = try Conv2d(w.scope("conv_in"), in: config.inChannels, out: ch[0], kernel: config.convInKernel,
                            padding: .symmetric((config.convInKernel - 1) / 2), backend: backend)
        timeEmbedding = try TimestepEmbedding(w.scope("time_embedding"), inChannels: ch[0], timeEmbedDim: temb, backend: backend)
        if config.additionEmbedType == "text_time", let dim = config.projectionClassEmbeddingsInputDim {
            addEmbedding = try TimestepEmbedding(w.scope("add_embedding"), inChannels: dim, timeEmbedDim: temb, backend: backend)
        } else {
            addEmbedding = nil
        }
        if config.encoderHidDimType == "text_proj", let hid = config.encoderHidDim {
            encoderHidProj = try Linear(w.scope("encoder_hid_proj"), in: hid, out: ctxDim, bias: true, backend: backend)
        } else {
            encoderHidProj = nil
        }

        var down: [DownBlock2D] = []
        var output = ch[0]
        for i in 0..<levels {
            let input = output
            output = ch[i]
            let spec = LevelSpec(inChannels: input, outChannels: output, prevOutChannels: 0, layers: layers[i],
                                 heads: heads[i], depth: depth[i], contextDim: ctxDim, tembChannels: temb, groups: g,
                                 eps: eps, linearProjection: config.useLinearProjection, resample: i < levels - 1,
                                 downsamplePadding: config.downsamplePadding)
            let scope = w.scope("down_blocks.\(i)")
            down.append(try DownBlock2D(scope, spec, crossAttention: config.downBlockTypes[i] == "CrossAttnDownBlock2D",
                                        backend: backend))
        }
        downBlocks = down

        if config.midBlockType != nil {
            midBlock = try UNetMidBlock2DCrossAttn(
                w.scope("mid_block"), channels: ch[levels - 1], heads: heads[levels - 1], depth: depth[levels - 1],
                contextDim: ctxDim, tembChannels: temb, groups: g, eps: eps, outputScaleFactor: config.midBlockScaleFactor,
                linearProjection: config.useLinearProjection, backend: backend)
        } else {
            midBlock = nil
        }

        let rch = Array(ch.reversed()), rheads = Array(heads.reversed()), rlayers = Array(layers.reversed())
        let rdepth = config.reverseTransformerLayersPerBlock ?? Array(depth.reversed())
        var up: [UpBlock2D] = []
        output = rch[0]
        for i in 0..<levels {
            let prev = output
            output = rch[i]
            let input = rch[min(i + 1, levels - 1)]
            let spec = LevelSpec(inChannels: input, outChannels: output, prevOutChannels: prev, layers: rlayers[i] + 1,
                                 heads: rheads[i], depth: rdepth[i], contextDim: ctxDim, tembChannels: temb, groups: g,
                                 eps: eps, linearProjection: config.useLinearProjection, resample: i < levels - 1,
                                 downsamplePadding: 0)
            let scope = w.scope("up_blocks.\(i)")
            up.append(try UpBlock2D(scope, spec, crossAttention: config.upBlockTypes[i] == "CrossAttnUpBlock2D",
                                    backend: backend))
        }
        upBlocks = up

        convNormOut = try GroupNorm(w.scope("conv_norm_out"), groups: g, channels: ch[0], eps: eps)
        convOut = try Conv2d(w.scope("conv_out"), in: ch[0], out: config.outChannels, kernel: config.convOutKernel,
                             padding: .symmetric((config.convOutKernel - 1) / 2), backend: backend)
        unusedWeights = weights.unusedNames
    }

    /// Loads `unet/` of a diffusers folder. By default the weights stay memory-mapped in their
    /// stored dtype (fp16 for Kolors) and are converted block by block when used.
    /// `loras` are merged into float32 copies of the layers they target (the files on disk and
    /// every other layer stay as they are): W + Σ weight·scale·(α/r)·B·A, as diffusers' PEFT
    /// layers compute W·x + Σ weight·scale·(α/r)·B(A·x).
    /// `w8a8` (EXPERIMENTAL): the transformer blocks' linear layers quantized to int8 (per-row
    /// scales) at load and run as u8 × s8 integer products on oneDNN with 7-bit per-token
    /// activations (`W8A8Backend` over `backend`); everything else as `backend` computes it.
    public static func load(from model: DiffusersModel, variant: WeightVariant = .fp16,
                            residency: WeightResidency = .mapped, loras: [(file: LoRAFile, weight: Float)] = [],
                            loraScale: Float = 1, w8a8: Bool = false,
                            backend: ComputeBackend = Backends.float32) throws -> UNet2DConditionModel {
        let config = try model.config("unet", as: UNet2DConditionConfig.self)
        let archive = try model.weights("unet", variant: variant)
        let overrides = try LoRAMerger.mergedWeights(loras.map { ($0.file, $0.weight * loraScale) }, into: archive,
                                                      component: "unet", backend: backend)
        var policy = WeightPolicy(residency: residency)
        var compute = backend
        if w8a8 {
            guard W8A8Backend.isAvailable else {
                throw UnsupportedConfiguration("int8-w8a8 needs oneDNN's int8 kernels, which this CPU lacks")
            }
            policy.int8 = { $0.contains(".transformer_blocks.") && $0.hasSuffix(".weight") }
            compute = W8A8Backend(base: backend)
        }
        let loader = WeightLoader(component: "unet", archive: archive, policy: policy, overrides: overrides)
        return try UNet2DConditionModel(config: config, weights: loader, backend: compute)
    }

    /// DeepCache's branch 0 here (`cache_layer_id` 0, `cache_block_id` 0 of the paper's SDXL
    /// code): the shallow pass runs `keep` = 1 layer of the first down block and enters the last
    /// up block at layer `start` = its layer count − 2. nil where the UNet is too shallow for it.
    public var deepCacheBranch: (keep: Int, start: Int)? {
        guard upBlocks.count >= 2, let first = downBlocks.first, let last = upBlocks.last else { return nil }
        let keep = 1, start = last.resnetCount - keep - 1
        guard first.resnets.count >= keep, start >= 0, first.attentions.isEmpty == last.attentions.isEmpty else { return nil }
        return (keep, start)
    }

    /// Every cross-attention layer (attn2) in diffusers' `attn_processors` order, which is the
    /// order of IP-Adapter's `ip_adapter.<2i+1>.to_k_ip` keys: down_blocks, up_blocks, then
    /// mid_block (registered last in diffusers' UNet).
    public var crossAttentionLayers: [(name: String, attention: Attention)] {
        var out: [(String, Attention)] = []
        func add(_ prefix: String, _ transformers: [Transformer2DModel]) {
            for (a, t) in transformers.enumerated() {
                for (b, block) in t.blocks.enumerated() {
                    out.append(("\(prefix).attentions.\(a).transformer_blocks.\(b).attn2", block.attn2))
                }
            }
        }
        for (i, block) in downBlocks.enumerated() { add("down_blocks.\(i)", block.attentions) }
        for (i, block) in upBlocks.enumerated() { add("up_blocks.\(i)", block.attentions) }
        if let midBlock { add("mid_block", midBlock.attentions) }
        return out
    }

    /// Checks that an IP-Adapter's `to_k_ip` / `to_v_ip` fit this UNet's cross-attention layers
    /// (count and shapes), as diffusers' `_load_ip_adapter_weights` would when it swaps in
    /// `IPAdapterAttnProcessor2_0`.
    public func checkIPAdapter(_ adapter: IPAdapterWeights) throws {
        let layers = crossAttentionLayers
        guard adapter.layers.count == layers.count else {
            throw CheckpointError("\(adapter.path): the IP-Adapter has \(adapter.layers.count) cross-attention layers, this UNet has \(layers.count)")
        }
        for (l, ip) in zip(layers, adapter.layers) {
            let c = l.attention.heads * l.attention.headDim
            guard ip.toK.outFeatures == c, ip.toK.inFeatures == l.attention.toK.inFeatures,
                  ip.toV.outFeatures == c, ip.toV.inFeatures == l.attention.toV.inFeatures else {
                throw CheckpointError("\(adapter.path): ip_adapter.\(ip.key).to_k_ip is \(ip.toK.weight.shape) but \(l.name) needs [\(c), \(l.attention.toK.inFeatures)]")
            }
        }
    }

    /// One-shot prediction (tests, benchmarks): `prepare`s the conditioning and runs one step
    /// with it. A run's steps prepare once and call `callAsFunction(_:timesteps:conditioning:…)`.
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], encoderHiddenStates: Tensor,
                               textEmbeds: Tensor? = nil, timeIds: Tensor? = nil,
                               imageTokens: Tensor? = nil, ipAdapter: IPAdapterWeights? = nil, imageScale: Float = 1,
                               cancel: CancellationToken? = nil, probe: ((String, Tensor) -> Void)? = nil) throws -> Tensor {
        let c = try prepare(text: encoderHiddenStates, textEmbeds: textEmbeds, timeIds: timeIds, imageTokens: imageTokens,
                            ipAdapter: ipAdapter, imageScale: imageScale)
        return try self(sample, timesteps: timesteps, conditioning: c, cancel: cancel, probe: probe)
    }

    /// Predicts the noise for `sample` [B, C, h, w] at `timesteps` (one value for the batch, or
    /// one per item) under a run's `conditioning` (`prepare`). `deepCache` runs a DeepCache full
    /// or shallow pass (an approximation; nil: the exact UNet). `probe` receives named
    /// intermediates for bisecting.
    public func callAsFunction(_ sample: Tensor, timesteps: [Float], conditioning: UNetConditioning,
                               deepCache: DeepCache.Pass? = nil, cancel: CancellationToken? = nil,
                               probe: ((String, Tensor) -> Void)? = nil) throws -> Tensor {
        let b = sample.shape[0]
        precondition(timesteps.count == 1 || timesteps.count == b, "one timestep or one per batch item")
        precondition(conditioning.batch == b, "conditioning for a batch of \(conditioning.batch), sample of \(b)")
        let ts = timesteps.count == 1 ? Array(repeating: timesteps[0], count: b) : timesteps

        // 1. time (+ added) embedding
        let tproj = timestepEmbedding(ts, dim: config.blockOutChannels[0], flipSinToCos: config.flipSinToCos,
                                      downscaleFreqShift: Float(config.freqShift))
        let emb = timeEmbedding(tproj)
        if let added = conditioning.addedEmbedding { addInPlace(emb, added) }
        probe?("emb", emb)
        let siluTemb = silu(emb)
        probe?("encoder_hid_proj", conditioning.text)

        // DeepCache's shallow pass: conv_in, the first layer of the first down block, then the
        // last up block entered part-way from the feature kept at the last full pass.
        if case .shallow(let cache) = deepCache {
            guard let feature = cache.feature, let (keep, start) = deepCacheBranch else {
                preconditionFailure("a shallow DeepCache pass needs a full pass first, on a UNet that allows it")
            }
            let h0 = convIn(sample)
            let (_, s) = try downBlocks[0](h0, siluTemb: siluTemb, conditioning: conditioning, layers: keep, cancel: cancel)
            let h = try upBlocks[upBlocks.count - 1](feature, skips: [h0] + s, siluTemb: siluTemb, conditioning: conditioning,
                                                     upsampleSize: nil, from: start, cancel: cancel)
            return convOut(convNormOut(h, silu: true))
        }

        // 3. down
        var h = convIn(sample)
        var skips: [Tensor] = [h]
        for (i, block) in downBlocks.enumerated() {
            try cancel?.check()
            let (out, s) = try block(h, siluTemb: siluTemb, conditioning: conditioning, cancel: cancel)
            h = out
            skips.append(contentsOf: s)
            probe?("down_blocks.\(i)", h)
        }

        // 4. mid
        if let midBlock {
            try cancel?.check()
            h = try midBlock(h, siluTemb: siluTemb, conditioning: conditioning, cancel: cancel)
            probe?("mid_block", h)
        }

        // 5. up (explicit upsample sizes when the latent is not a multiple of 2^upsamplers)
        let factor = 1 << upBlocks.filter(\.hasUpsampler).count
        let forwardSize = sample.shape[2] % factor != 0 || sample.shape[3] % factor != 0
        for (i, block) in upBlocks.enumerated() {
            try cancel?.check()
            let n = block.resnetCount
            let mine = Array(skips.suffix(n))
            skips.removeLast(n)
            var size: (Int, Int)?
            if forwardSize, block.hasUpsampler, let next = skips.last { size = (next.shape[2], next.shape[3]) }
            var record: ((Int, Tensor) -> Void)?
            if case .full(let cache) = deepCache, i == upBlocks.count - 1, let (_, start) = deepCacheBranch {
                record = { j, t in if j == start { cache.feature = t } }
            }
            h = try block(h, skips: mine, siluTemb: siluTemb, conditioning: conditioning, upsampleSize: size, record: record,
                          cancel: cancel)
            probe?("up_blocks.\(i)", h)
        }

        // 6. out
        return convOut(convNormOut(h, silu: true))
    }
}
