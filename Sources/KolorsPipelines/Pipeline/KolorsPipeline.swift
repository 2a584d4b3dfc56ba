import Foundation
import KolorsEngine
import KolorsImageIO
import KolorsModels

/// Mirrors diffusers' `KolorsPipeline` (text-to-image) and `KolorsImg2ImgPipeline`
/// (image-to-image) in float32: same tokenization, embeddings, CFG batching, micro-conditioning,
/// schedules, seeds (torch's CPU generator), VAE decoding and uint8 rounding.
///
/// Components load when first needed and stay memory-mapped; the text encoder is loaded,
/// used and released per new prompt (embeddings are cached), the VAE encoder only for img2img.
public final class KolorsPipeline: @unchecked Sendable {
    public let model: DiffusersModel
    public let variant: WeightVariant
    public let backend: ComputeBackend
    public let prompts: PromptEncoder
    public let unetConfig: UNet2DConditionConfig
    public let vaeConfig: AutoencoderKLConfig
    public let schedulerConfig: SchedulerConfig
    private var unet: UNet2DConditionModel?
    /// The LoRAs merged into `unet` ([(path, weight × scale)]).
    private var unetLoRAs: [LoRAInput] = []
    private var ipAdapter: (path: String, weights: IPAdapterWeights)?
    private var imageEncoder: (path: String, model: CLIPVisionModel, processor: CLIPImageProcessor)?
    private var vaeDecoder: AutoencoderKL?
    /// Guards the UNet, IP-Adapter, image-encoder and VAE caches (generations may run concurrently).
    private let lock = NSLock()
    private var vaeEncoder: AutoencoderKL?

    public init(model: DiffusersModel, variant: WeightVariant = .fp16, textEncoderPrecision: TextEncoderPrecision = .fp16,
                backend: ComputeBackend = Backends.float32) throws {
        self.model = model
        self.variant = variant
        self.backend = backend
        for c in ["tokenizer", "text_encoder", "unet", "vae", "scheduler"] where model.component(c) == nil {
            throw CheckpointError("\(model.root): model_index.json has no '\(c)' component; is this a Kolors checkpoint?")
        }
        unetConfig = try model.config("unet", as: UNet2DConditionConfig.self)
        vaeConfig = try model.config("vae", as: AutoencoderKLConfig.self)
        schedulerConfig = try SchedulerConfig(contentsOf: model.directory(of: "scheduler") + "/scheduler_config.json")
        prompts = try PromptEncoder(model: model, variant: variant, precision: textEncoderPrecision, backend: backend)
        try Self.checkComponentsFit(unet: unetConfig, vae: vaeConfig,
                                    textEncoder: try model.config("text_encoder", as: ChatGLMConfig.self))
    }

    /// The widths the components hand each other must agree (each config can be valid on its
    /// own and still not fit the others): text features into cross-attention (directly or
    /// through encoder_hid_proj), pooled text plus six size ids into the added embedding, and
    /// the VAE's latent channels into and out of the UNet. Checked when the pipeline opens, so
    /// a mismatch is a one-line error instead of a failed matrix product mid-run.
    public static func checkComponentsFit(unet: UNet2DConditionConfig, vae: AutoencoderKLConfig, textEncoder: ChatGLMConfig) throws {
        let width = textEncoder.hiddenSize
        if unet.encoderHidDimType == "text_proj" {
            guard unet.encoderHidDim == width else {
                throw GenerationError("unet/config.json: encoder_hid_dim \(unet.encoderHidDim.map(String.init) ?? "null") does not match the text encoder's hidden_size \(width)")
            }
        } else if unet.contextDim != width {
            throw GenerationError("unet/config.json: cross_attention_dim \(unet.contextDim) does not match the text encoder's hidden_size \(width) (and there is no text_proj encoder_hid_proj)")
        }
        if unet.additionEmbedType == "text_time", let dim = unet.additionTimeEmbedDim,
           let expected = unet.projectionClassEmbeddingsInputDim, dim * 6 + width != expected {
            throw GenerationError("unet/config.json: projection_class_embeddings_input_dim \(expected) is not the pooled text width \(width) + 6 × addition_time_embed_dim \(dim)")
        }
        guard unet.inChannels == vae.latentChannels, unet.outChannels == vae.latentChannels else {
            throw GenerationError("unet/config.json in_channels \(unet.inChannels) / out_channels \(unet.outChannels) do not match vae/config.json latent_channels \(vae.latentChannels)")
        }
    }

    /// Pixels per latent cell (8 for Kolors).
    public var vaeScaleFactor: Int { vaeConfig.scaleFactor }
    /// diffusers' default height/width: unet.sample_size × vae_scale_factor.
    public var defaultSize: Int { (unetConfig.sampleSize ?? 128) * vaeScaleFactor }

    /// The UNet with `loras` merged (reloaded when the set of LoRAs or their weights change).
    private func loadUNet(loras: [LoRAInput], scale: Float, _ loading: ((String) -> Void)?) throws -> UNet2DConditionModel {
        lock.lock()
        defer { lock.unlock() }
        let key = loras.map { LoRAInput(path: $0.path, weight: $0.weight * scale) }
        if let unet, key == unetLoRAs { return unet }
        unet = nil
        loading?(loras.isEmpty ? "unet" : "unet + \(loras.count) LoRA\(loras.count == 1 ? "" : "s")")
        let files = try loras.map { l -> (file: LoRAFile, weight: Float) in
            do {
                return (try LoRAFile(path: l.path, unetConfig: unetConfig), l.weight * scale)
            } catch let e as LoRAError {
                throw GenerationError(e.message)
            }
        }
        let u: UNet2DConditionModel
        do {
            u = try UNet2DConditionModel.load(from: model, variant: variant, loras: files, backend: backend)
        } catch let e as LoRAError {
            throw GenerationError(e.message)
        }
        unet = u
        unetLoRAs = key
        return u
    }

    /// LoRA files that `generate` would apply but that target other components (text encoders):
    /// their keys are not applied. For warnings in front ends.
    public func ignoredLoRAKeys(_ loras: [LoRAInput]) -> [String: Int] {
        var out: [String: Int] = [:]
        for l in loras {
            if let f = try? LoRAFile(path: l.path, unetConfig: unetConfig), !f.ignoredKeys.isEmpty { out[l.path] = f.ignoredKeys.count }
        }
        return out
    }

    /// IP-Adapter image tokens for `input`: the resampler on CLIP's penultimate hidden states of
    /// [an all-zero normalised image (the negative, as diffusers' `encode_image`); the image],
    /// [2, queries, cross_attention_dim], and the adapter (checked against `unet`).
    private func ipAdapterTokens(_ input: IPAdapterInput, unet: UNet2DConditionModel, cancel: CancellationToken?,
                                 _ loading: ((String) -> Void)?) throws -> (negative: Tensor, positive: Tensor, adapter: IPAdapterWeights) {
        lock.lock()
        defer { lock.unlock() }
        let weightsPath = try IPAdapterWeights.resolve(input.weights)
        if ipAdapter?.path != weightsPath {
            loading?("ip_adapter")
            ipAdapter = (weightsPath, try IPAdapterWeights.load(weightsPath, backend: backend))
        }
        let adapter = ipAdapter!.weights
        let encoderDir = input.imageEncoder ?? IPAdapterWeights.defaultImageEncoderDirectory(for: input.weights)
        if imageEncoder?.path != encoderDir {
            loading?("image_encoder")
            let clip = try CLIPVisionModel.load(directory: encoderDir, backend: backend)
            let processor = try CLIPImageProcessor.forEncoder(directory: encoderDir, imageSize: clip.config.imageSize)
            imageEncoder = (encoderDir, clip, processor)
        }
        let (clip, processor) = (imageEncoder!.model, imageEncoder!.processor)
        guard clip.config.hiddenSize == adapter.projection.embedDims else {
            throw GenerationError("the image encoder gives \(clip.config.hiddenSize)-wide features but the IP-Adapter's resampler takes \(adapter.projection.embedDims)")
        }
        guard adapter.projection.outputDims == (unetConfig.crossAttentionDim.values(1).first ?? 0) else {
            throw GenerationError("the IP-Adapter makes \(adapter.projection.outputDims)-wide image tokens but the UNet's cross-attention takes \(unetConfig.crossAttentionDim.values(1).first ?? 0)")
        }
        try unet.checkIPAdapter(adapter)
        let pixels = try processor(input.image)
        let features = try clip(concat([Tensor.zeros(pixels.shape), pixels], dim: 0), cancel: cancel)
        let tokens = adapter.projection(features)  // [2, Q, C]
        return (tokens.slice(0..<1), tokens.slice(1..<2), adapter)
    }

    private func loadVAE(encoder: Bool, _ loading: ((String) -> Void)?) throws -> AutoencoderKL {
        lock.lock()
        defer { lock.unlock() }
        if encoder, let vaeEncoder { return vaeEncoder }
        if !encoder, let vaeDecoder { return vaeDecoder }
        loading?("vae")
        let v = try AutoencoderKL.load(from: model, variant: variant, encoder: encoder, decoder: !encoder, backend: backend)
        if encoder { vaeEncoder = v } else { vaeDecoder = v }
        return v
    }

    /// Checks a request the way diffusers' `check_inputs` would, with one-line errors, plus the
    /// limits of `GenerationRequest` (sizes, batch, scales), so that no setting can overflow a
    /// float to NaN, overflow an integer or size an absurd allocation.
    public func validate(_ r: GenerationRequest) throws {
        guard !r.prompts.isEmpty else { throw GenerationError("no prompt given") }
        guard r.steps > 0 else { throw GenerationError("steps must be at least 1 (got \(r.steps))") }
        let trainSteps = schedulerConfig.numTrainTimesteps ?? 1000
        guard r.steps <= trainSteps else {
            throw GenerationError("steps must be at most \(trainSteps) (got \(r.steps))")
        }
        guard r.guidance.isFinite else { throw GenerationError("guidance must be a finite number") }
        let g = GenerationRequest.guidanceRange
        guard g.contains(r.guidance) else {
            throw GenerationError("guidance must be between \(g.lowerBound) and \(g.upperBound) (got \(r.guidance))")
        }
        guard r.imagesPerPrompt >= 1 else { throw GenerationError("images per prompt must be at least 1") }
        if let n = r.deepCacheInterval, !DeepCache.intervals.contains(n) {
            throw GenerationError("the DeepCache interval must be \(DeepCache.intervals.lowerBound)…\(DeepCache.intervals.upperBound) (got \(n))")
        }
        let (total, overflow) = r.prompts.count.multipliedReportingOverflow(by: r.imagesPerPrompt)
        guard !overflow, total <= GenerationRequest.maxImages else {
            throw GenerationError("\(r.prompts.count) prompt\(r.prompts.count == 1 ? "" : "s") × \(r.imagesPerPrompt) images per prompt is more than the \(GenerationRequest.maxImages) images one run can make")
        }
        let scales = GenerationRequest.adapterScaleRange
        func checkScale(_ what: String, _ v: Float) throws {
            guard v.isFinite else { throw GenerationError("\(what) must be a finite number") }
            guard scales.contains(v) else {
                throw GenerationError("\(what) must be between \(scales.lowerBound) and \(scales.upperBound) (got \(v))")
            }
        }
        if let ip = r.ipAdapter {
            try checkScale("the IP-Adapter scale", ip.scale)
            guard ip.image.width > 0, ip.image.height > 0 else { throw GenerationError("the IP-Adapter image is empty") }
            try checkImageSize(ip.image, "the IP-Adapter image")
        }
        for l in r.loras { try checkScale("LoRA \(l.path): the weight", l.weight) }
        try checkScale("the LoRA scale", r.loraScale)
        guard r.negativePrompts.count <= 1 || r.negativePrompts.count == r.prompts.count else {
            throw GenerationError("\(r.negativePrompts.count) negative prompts for \(r.prompts.count) prompts: give one, or one per prompt")
        }
        for (name, v) in [("width", r.width), ("height", r.height)] {
            guard let v else { continue }
            guard v > 0, v % vaeScaleFactor == 0 else {
                throw GenerationError("\(name) must be a positive multiple of \(vaeScaleFactor) (got \(v))")
            }
            guard v <= GenerationRequest.maxSide else { throw GenerationError("\(name) \(v) is larger than \(GenerationRequest.maxSide)") }
        }
        if let image = r.initImage {
            try checkImageSize(image, "the input image")
            let (w, h) = (image.width - image.width % vaeScaleFactor, image.height - image.height % vaeScaleFactor)
            guard w > 0, h > 0 else {
                throw GenerationError("the input image is \(image.width)×\(image.height); it must be at least \(vaeScaleFactor)×\(vaeScaleFactor)")
            }
        } else if r.width == nil || r.height == nil {
            // The default comes from unet/config.json's sample_size: as untrusted as any setting.
            let d = defaultSize
            guard d % vaeScaleFactor == 0, d <= GenerationRequest.maxSide else {
                throw GenerationError("the checkpoint's default size \(d) (unet sample_size × \(vaeScaleFactor)) is not a multiple of \(vaeScaleFactor) up to \(GenerationRequest.maxSide); give --width and --height")
            }
        }
        if r.initImage != nil {
            guard r.strength.isFinite, (0...1).contains(r.strength) else {
                throw GenerationError("strength must be between 0 and 1 (got \(r.strength))")
            }
            let probe = try r.scheduler.make(config: schedulerConfig)
            try probe.setTimesteps(r.steps)
            do {
                _ = try probe.img2imgStart(strength: r.strength)
            } catch let e as SchedulerError {
                throw GenerationError(e.message)
            }
        }
    }

    /// An input image may be at most `GenerationRequest.maxSide` pixels on a side (the output
    /// follows an img2img input, and every image is converted to floats whole).
    private func checkImageSize(_ image: RGBImage, _ what: String) throws {
        let m = GenerationRequest.maxSide
        guard image.width <= m + vaeScaleFactor - 1, image.height <= m + vaeScaleFactor - 1 else {
            throw GenerationError("\(what) is \(image.width)×\(image.height); at most \(m)×\(m) is supported (resize it first)")
        }
    }

    /// Prepares a generation — txt2img, or img2img when `request.initImage` is set — as diffusers
    /// does before its denoising loop: prompts encoded (cached per text), CFG batching and
    /// micro-conditioning, the UNet's conditioning (`UNetConditioning`), the schedule and the
    /// starting latents (torch's CPU generator). The caller then drives the run: `next()` per
    /// step, `decode()` at the end. `loading` names each component as it loads; `cancel` is also
    /// checked inside long steps.
    public func prepare(_ request: GenerationRequest, cancel: CancellationToken? = nil,
                        loading: ((String) -> Void)? = nil) throws -> GenerationRun {
        try validate(request)
        var timings: [String: Double] = [:]
        func timed<T>(_ key: String, _ body: () throws -> T) rethrows -> T {
            let t0 = DispatchTime.now().uptimeNanoseconds
            defer { timings[key, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
            return try body()
        }
        let height = request.height ?? defaultSize
        let width = request.width ?? defaultSize
        let batch = request.prompts.count
        let perPrompt = request.imagesPerPrompt
        let total = batch * perPrompt
        let cfg = request.guidance > 1

        // 1. text embeddings (cached per text; the encoder runs only for new texts)
        let negatives: [String] = request.negativePrompts.isEmpty ? Array(repeating: "", count: batch)
            : request.negativePrompts.count == 1 ? Array(repeating: request.negativePrompts[0], count: batch)
            : request.negativePrompts
        let texts = request.prompts + (cfg ? negatives : [])
        let (embeddings, ranEncoder) = try timed("text_encoder") {
            try prompts.encode(texts, cancel: cancel) { loading?($0) }
        }
        func stack(_ rows: [PromptEncoder.Embedding], _ key: KeyPath<PromptEncoder.Embedding, Tensor>) -> Tensor {
            // each prompt's embedding repeated imagesPerPrompt times consecutively
            concat(rows.flatMap { Array(repeating: $0[keyPath: key], count: perPrompt) }, dim: 0)
        }
        let pos = Array(embeddings[0..<batch])
        var encoderStates = stack(pos, \.embeds)
        var textEmbeds = stack(pos, \.pooled)
        if cfg {
            let neg = Array(embeddings[batch..<(2 * batch)])
            encoderStates = concat([stack(neg, \.embeds), encoderStates], dim: 0)
            textEmbeds = concat([stack(neg, \.pooled), textEmbeds], dim: 0)
        }
        try cancel?.check()

        // 2. micro-conditioning: [orig_h, orig_w, crop_top, crop_left, target_h, target_w] per row
        let orig = request.originalSize ?? (height, width)
        let target = request.targetSize ?? (height, width)
        let ids: [Float] = [orig.height, orig.width, request.cropsTopLeft.top, request.cropsTopLeft.left,
                            target.height, target.width].map { Float($0) }
        let rows = cfg ? 2 * total : total
        let timeIds = Tensor(shape: [rows, 6], values: Array((0..<rows).map { _ in ids }.joined()))
        if let dim = unetConfig.additionTimeEmbedDim, let expected = unetConfig.projectionClassEmbeddingsInputDim,
           dim * 6 + textEmbeds.shape[1] != expected {
            throw GenerationError("the UNet expects an added embedding of \(expected), the text encoder gives \(textEmbeds.shape[1]) + 6×\(dim)")
        }

        // 3. schedule and starting latents
        let scheduler = try request.scheduler.make(config: schedulerConfig)
        try scheduler.setTimesteps(request.steps)
        var generator = TorchGenerator(seed: request.seed)
        let latents: Tensor
        var firstStep = 0
        if let image = request.initImage {
            let pixels = try ImageConversion.preprocess(image, multiple: vaeScaleFactor)
            let vae = try loadVAE(encoder: true, loading)
            let posterior = try timed("vae_encode") { try vae.encode(pixels, cancel: cancel) }
            let eps = generator.randn(posterior.mean.shape)
            let sample = scale(posterior.sample(noise: eps), vaeConfig.scalingFactor, inPlace: true)
            let initLatents = concat(Array(repeating: sample, count: total), dim: 0)
            firstStep = try scheduler.img2imgStart(strength: request.strength).startIndex
            let noise = generator.randn(initLatents.shape)
            latents = scheduler.addNoise(original: initLatents, noise: noise, stepIndex: firstStep)
            lock.lock(); vaeEncoder = nil; lock.unlock()  // only img2img's first moments need it
        } else {
            let shape = [total, unetConfig.inChannels, height / vaeScaleFactor, width / vaeScaleFactor]
            latents = scale(generator.randn(shape), scheduler.initNoiseSigma, inPlace: true)
        }

        // 4. the UNet and its conditioning (IP-Adapter tokens [neg…; pos…] follow the CFG layout of the text)
        let unet = try loadUNet(loras: request.loras, scale: request.loraScale, loading)
        var imageTokens: Tensor?
        var adapter: IPAdapterWeights?
        if let ip = request.ipAdapter {
            let (neg, pos, a) = try timed("image_encoder") { try ipAdapterTokens(ip, unet: unet, cancel: cancel, loading) }
            let positives = Array(repeating: pos, count: total)
            imageTokens = concat(cfg ? Array(repeating: neg, count: total) + positives : positives, dim: 0)
            adapter = a
        }
        let deepCache = request.deepCacheInterval.map { DeepCache(interval: $0) }
        if deepCache != nil && unet.deepCacheBranch == nil { throw GenerationError("this UNet is too shallow for DeepCache") }
        // the conditioning's projections and cross-attention K/V, made once for every step
        let conditioning = try timed("unet") {
            try unet.prepare(text: encoderStates, textEmbeds: textEmbeds, timeIds: timeIds, imageTokens: imageTokens,
                             ipAdapter: adapter, imageScale: request.ipAdapter?.scale ?? 0)
        }
        return GenerationRun(pipeline: self, request: request, unet: unet, conditioning: conditioning, scheduler: scheduler,
                             generator: generator, latents: latents, steps: Array(firstStep..<scheduler.timesteps.count),
                             guided: cfg, deepCache: deepCache, textEncoderRan: ranEncoder, timings: timings, cancel: cancel)
    }

    /// The first NaN or ±∞ in `t`, if any.
    static func firstNonFinite(_ t: Tensor) -> Float? {
        let p = t.pointer
        for i in 0..<t.count where !p[i].isFinite { return p[i] }
        return nil
    }

    /// A whole generation: `prepare`, every step, `decode` (unless `request.decode` is off).
    public func generate(_ request: GenerationRequest, cancel: CancellationToken? = nil) throws -> GenerationResult {
        let run = try prepare(request, cancel: cancel)
        while try run.next() != nil {}
        return try run.result()
    }

    /// The VAE decoder (loaded at first use), for `GenerationRun.decode`.
    func decoder(_ loading: ((String) -> Void)?) throws -> AutoencoderKL { try loadVAE(encoder: false, loading) }
}
