import Foundation

/// Everything needed to reproduce one generation request: the studio edits it, the pipelines
/// run it, and image metadata stores it (as our own JSON and as A1111-style `parameters`).
public struct GenerationParameters: Codable, Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String
    /// Pixels; multiples of 64 (the UNet halves the 1/8-size latent three times).
    public var width: Int
    public var height: Int
    public var steps: Int
    /// Classifier-free guidance scale.
    public var guidance: Float
    public var seed: UInt64
    /// One of `SchedulerKind` raw values: euler | euler-a | dpm++2m | dpm++2m-karras | ddim | unipc.
    public var scheduler: String
    public var imagesPerPrompt: Int
    /// How the images of a batch get their noise: one generator seeded once for the whole batch
    /// (diffusers), or image i made alone with seed + i (A1111; each image's record then holds its
    /// own seed, so it can be remade alone).
    public var batchSeeds: BatchSeeds
    /// img2img source image path; nil for text-to-image.
    public var initImage: String?
    /// img2img strength (fraction of the schedule that is re-noised), as diffusers' img2img.
    public var strength: Float
    /// The model's name or path, as shown in metadata.
    public var model: String
    /// For later: IP-Adapter settings.
    public var ipAdapter: IPAdapterSettings?
    /// LoRA files and weights, applied in order.
    public var loras: [LoRASettings]
    /// DeepCache step caching (an approximation): the whole UNet every N-th step; nil: off.
    public var deepCacheInterval: Int?

    public enum BatchSeeds: String, Codable, Sendable, Equatable, CaseIterable {
        /// One seed for the whole batch, as diffusers draws it (the default).
        case shared
        /// Image i uses seed + i, as A1111 does.
        case increment = "seed+i"
    }

    public struct IPAdapterSettings: Codable, Sendable, Equatable {
        /// The IP-Adapter weights file or the folder holding `ip_adapter_plus_general.safetensors`.
        public var path: String
        /// The reference image.
        public var image: String
        /// 1.0 is diffusers' value after `load_ip_adapter`.
        public var scale: Float
        /// The CLIP image encoder folder, when not `image_encoder/` beside the weights.
        public var imageEncoder: String?
        public init(path: String, image: String, scale: Float = 1.0, imageEncoder: String? = nil) {
            self.path = path
            self.image = image
            self.scale = scale
            self.imageEncoder = imageEncoder
        }
    }

    public struct LoRASettings: Codable, Sendable, Equatable {
        /// The LoRA file (or, parsed from A1111 text, just its name).
        public var path: String
        public var weight: Float
        /// A1111's short hash of the file (12 hex digits), when known.
        public var hash: String?
        public init(path: String, weight: Float = 1.0, hash: String? = nil) {
            self.path = path
            self.weight = weight
            self.hash = hash
        }

        /// The name A1111 uses in `<lora:NAME:weight>`: the file name without its extension.
        public var name: String {
            let file = path.split(separator: "/").last.map(String.init) ?? path
            return file.hasSuffix(".safetensors") ? String(file.dropLast(".safetensors".count)) : file
        }
    }

    /// Kolors defaults as the studio uses them: 1024², 25 Euler steps, guidance 5.0.
    /// (diffusers' KolorsPipeline defaults to 50 steps; 25 with Euler is visually close and half the time.)
    public static let defaultWidth = 1024
    public static let defaultHeight = 1024
    public static let defaultSteps = 25
    public static let defaultGuidance: Float = 5.0
    public static let defaultSeed: UInt64 = 66
    public static let defaultScheduler = SchedulerKind.euler.rawValue
    public static let defaultStrength: Float = 0.3
    public static let defaultModel = "Kolors"
    /// The text encoder's maximum prompt length in tokens (ChatGLM3 in Kolors).
    public static let maxPromptTokens = 256

    public init(prompt: String = "", negativePrompt: String = "",
                width: Int = GenerationParameters.defaultWidth, height: Int = GenerationParameters.defaultHeight,
                steps: Int = GenerationParameters.defaultSteps, guidance: Float = GenerationParameters.defaultGuidance,
                seed: UInt64 = GenerationParameters.defaultSeed, scheduler: String = GenerationParameters.defaultScheduler,
                imagesPerPrompt: Int = 1, batchSeeds: BatchSeeds = .shared, initImage: String? = nil,
                strength: Float = GenerationParameters.defaultStrength, model: String = GenerationParameters.defaultModel,
                ipAdapter: IPAdapterSettings? = nil, loras: [LoRASettings] = []) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.width = width
        self.height = height
        self.steps = steps
        self.guidance = guidance
        self.seed = seed
        self.scheduler = scheduler
        self.imagesPerPrompt = imagesPerPrompt
        self.batchSeeds = batchSeeds
        self.initImage = initImage
        self.strength = strength
        self.model = model
        self.ipAdapter = ipAdapter
        self.loras = loras
    }

    /// The scheduler as an enum (nil when the string names none of ours).
    public var schedulerKind: SchedulerKind? { SchedulerKind(rawValue: scheduler) }

    private enum CodingKeys: String, CodingKey {
        case prompt, negativePrompt, width, height, steps, guidance, seed, scheduler, imagesPerPrompt, batchSeeds
        case initImage, strength, model, ipAdapter, loras, deepCacheInterval
    }

    /// Missing keys fall back to the defaults, so records written by older or newer versions load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GenerationParameters()
        prompt = try c.decodeIfPresent(String.self, forKey: .prompt) ?? d.prompt
        negativePrompt = try c.decodeIfPresent(String.self, forKey: .negativePrompt) ?? d.negativePrompt
        width = try c.decodeIfPresent(Int.self, forKey: .width) ?? d.width
        height = try c.decodeIfPresent(Int.self, forKey: .height) ?? d.height
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? d.steps
        guidance = try c.decodeIfPresent(Float.self, forKey: .guidance) ?? d.guidance
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        scheduler = try c.decodeIfPresent(String.self, forKey: .scheduler) ?? d.scheduler
        imagesPerPrompt = try c.decodeIfPresent(Int.self, forKey: .imagesPerPrompt) ?? d.imagesPerPrompt
        batchSeeds = (try? c.decodeIfPresent(BatchSeeds.self, forKey: .batchSeeds)) ?? d.batchSeeds
        initImage = try c.decodeIfPresent(String.self, forKey: .initImage)
        strength = try c.decodeIfPresent(Float.self, forKey: .strength) ?? d.strength
        model = try c.decodeIfPresent(String.self, forKey: .model) ?? d.model
        ipAdapter = try c.decodeIfPresent(IPAdapterSettings.self, forKey: .ipAdapter)
        loras = try c.decodeIfPresent([LoRASettings].self, forKey: .loras) ?? []
        // an interval outside what the engine takes is dropped (the record still loads)
        deepCacheInterval = (try? c.decodeIfPresent(Int.self, forKey: .deepCacheInterval)).flatMap { $0 }
            .flatMap { (2...10).contains($0) ? $0 : nil }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(negativePrompt, forKey: .negativePrompt)
        try c.encode(width, forKey: .width)
        try c.encode(height, forKey: .height)
        try c.encode(steps, forKey: .steps)
        try c.encode(guidance, forKey: .guidance)
        try c.encode(seed, forKey: .seed)
        try c.encode(scheduler, forKey: .scheduler)
        try c.encode(imagesPerPrompt, forKey: .imagesPerPrompt)
        if batchSeeds != .shared { try c.encode(batchSeeds, forKey: .batchSeeds) }
        try c.encodeIfPresent(initImage, forKey: .initImage)
        try c.encode(strength, forKey: .strength)
        try c.encode(model, forKey: .model)
        try c.encodeIfPresent(ipAdapter, forKey: .ipAdapter)
        if !loras.isEmpty { try c.encode(loras, forKey: .loras) }
        try c.encodeIfPresent(deepCacheInterval, forKey: .deepCacheInterval)
    }
}

