import KolorsEngine
import KolorsModels
import KolorsImageIO

/// Everything one call of the pipeline needs, with diffusers' defaults.
public struct GenerationRequest: Sendable {
    /// One or more prompts (a batch, as diffusers with a list of prompts).
    public var prompts: [String]
    /// Empty (every negative is ""), one (used for every prompt) or one per prompt.
    public var negativePrompts: [String] = []
    /// Output size; nil means the checkpoint default (unet.sample_size × 8 = 1024 for Kolors).
    /// For img2img the output follows the input image and these only set micro-conditioning.
    public var width: Int?
    public var height: Int?
    public var steps = 50
    public var guidance: Float = 5
    public var seed: UInt64 = 0
    public var scheduler: SchedulerKind = .euler
    public var imagesPerPrompt = 1
    /// img2img source (its size, rounded down to a multiple of 8, is the output size).
    public var initImage: RGBImage?
    /// img2img strength (diffusers default 0.3). Double, as Python's float, so that
    /// int(steps · strength) agrees.
    public var strength: Double = 0.3
    /// SDXL micro-conditioning; nil means (height, width).
    public var originalSize: (height: Int, width: Int)?
    public var cropsTopLeft: (top: Int, left: Int) = (0, 0)
    public var targetSize: (height: Int, width: Int)?
    /// Decode to pixels (false returns latents only, like output_type="latent").
    public var decode = true
    /// Decode in overlapping tiles of this many latent cells (diffusers' `vae.enable_tiling()`
    /// with `tile_latent_min_size`; 64 = 512-pixel tiles): bounded memory for large images, with
    /// seams blended as diffusers does. nil decodes the whole latent at once (the default).
    public var vaeTileLatent: Int?
    /// An IP-Adapter-Plus image prompt (diffusers' `load_ip_adapter` + `ip_adapter_image`).
    public var ipAdapter: IPAdapterInput?
    /// LoRAs applied to the UNet, each with its adapter weight (`set_adapters(names, weights)`).
    public var loras: [LoRAInput] = []
    /// diffusers' `cross_attention_kwargs={"scale": …}`: multiplies every LoRA (default 1).
    public var loraScale: Float = 1
    /// DeepCache (an approximation, for drafts): the whole UNet every `deepCacheInterval`-th
    /// step, only its shallow path in between (see `DeepCache`). nil: every step exact.
    public var deepCacheInterval: Int?

    /// `--cache`: "off" → nil, "deep:N" → N (DeepCache with a full pass every N steps).
    public static func parseStepCache(_ text: String) throws -> Int? {
        if text == "off" { return nil }
        guard text.hasPrefix("deep:"), let n = Int(text.dropFirst(5)), DeepCache.intervals.contains(n) else {
            throw GenerationError("--cache must be off or deep:N with N in \(DeepCache.intervals.lowerBound)…\(DeepCache.intervals.upperBound) (got \(text))")
        }
        return n
    }

    public init(prompts: [String]) { self.prompts = prompts }

    // Limits `KolorsPipeline.validate` enforces, far beyond useful values but low enough that
    // no setting can overflow a float or ask for an absurd allocation.

    /// Widest and tallest image, in pixels (also for img2img and IP-Adapter input images).
    public static let maxSide = 4096
    /// Images in one call: prompts × images per prompt (the UNet runs them as one batch).
    public static let maxImages = 64
    /// Classifier-free guidance (A1111 offers up to 30; ≤ 1 turns guidance off).
    public static let guidanceRange: ClosedRange<Float> = 0...100
    /// IP-Adapter scale, LoRA weights and the LoRA scale (studio sliders: 0…2 and −2…2).
    public static let adapterScaleRange: ClosedRange<Float> = -10...10

    public init(prompt: String) { self.prompts = [prompt] }
}

/// An IP-Adapter-Plus image prompt.
public struct IPAdapterInput: Sendable {
    /// `ip_adapter_plus_general.safetensors`, or a folder holding it.
    public var weights: String
    /// The CLIP image encoder folder; nil means `image_encoder/` beside the weights.
    public var imageEncoder: String?
    /// The reference image.
    public var image: RGBImage
    /// `set_ip_adapter_scale` (diffusers' default after loading: 1.0; 0 turns the branch off).
    public var scale: Float

    public init(weights: String, imageEncoder: String? = nil, image: RGBImage, scale: Float = 1) {
        self.weights = weights
        self.imageEncoder = imageEncoder
        self.image = image
        self.scale = scale
    }
}

/// A LoRA file and its adapter weight.
public struct LoRAInput: Sendable, Equatable {
    public var path: String
    public var weight: Float

    public init(path: String, weight: Float = 1) {
        self.path = path
        self.weight = weight
    }
}

/// The result of one call.
public struct GenerationResult: Sendable {
    /// Final latents of the whole batch before VAE scaling, [B, 4, h, w].
    public let latents: Tensor
    /// Decoded images in batch order (prompt 0's images, then prompt 1's, …).
    public let images: [RGBImage]
    /// Decoded images as floats in [0, 1], NHWC (diffusers' output_type="np").
    public let pixels: Tensor?
    /// Wall-clock seconds per phase.
    public let timings: [String: Double]
    /// Problems that did not stop the run (say, NaN pixels from the VAE), one line each.
    public var warnings: [String] = []
}

/// Input that the pipeline refuses, with a one-line explanation.
public struct GenerationError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
